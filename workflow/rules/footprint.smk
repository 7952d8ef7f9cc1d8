rule fig8_footprint_table:
    input:
        code=LIBRARY_CODE,
    output:
        "results/tables/fig8_footprint.csv",
    params:
        platforms=all_platforms(),
        coe=coe_params(),
    conda:
        "../../environment.yml"
    log:
        "results/logs/fig8_footprint_table.log",
    benchmark:
        "results/benchmarks/fig8_footprint_table.tsv"
    script:
        "../scripts/footprint_table.py"


rule fig8_footprint_figure:
    input:
        table="results/tables/fig8_footprint.csv",
        code=LIBRARY_CODE,
    output:
        png=report(
            "results/figures/fig8_footprint.png",
            caption="../report/fig8_footprint.rst",
            category="Figure 8: footprint",
        ),
        svg="results/figures/fig8_footprint.svg",
    conda:
        "../../environment.yml"
    log:
        "results/logs/fig8_footprint_figure.log",
    benchmark:
        "results/benchmarks/fig8_footprint_figure.tsv"
    script:
        "../scripts/footprint_figure.py"


rule footprint_claims:
    input:
        code=LIBRARY_CODE,
    output:
        "results/validation/parts/footprint.csv",
    params:
        coe=coe_params(),
    conda:
        "../../environment.yml"
    log:
        "results/logs/footprint_claims.log",
    benchmark:
        "results/benchmarks/footprint_claims.tsv"
    script:
        "../scripts/footprint_claims.py"
