CLAIM_PARTS = ["footprint", "fig3", "fig6", "table2"]


rule claims:
    input:
        parts=expand("results/validation/parts/{part}.csv", part=CLAIM_PARTS),
    output:
        "results/validation/claims.csv",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    script:
        "../scripts/claims.py"
