CLAIM_PARTS = ["footprint", "fig3", "fig6", "table2"]


rule claims:
    input:
        code=LIBRARY_CODE,
        parts=expand("results/validation/parts/{part}.csv", part=CLAIM_PARTS),
    output:
        report(
            "results/validation/claims.csv",
            caption="../report/claims.rst",
            category="Validation against the article",
        ),
    conda:
        "../../environment.yml"
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    script:
        "../scripts/claims.py"
