rule fig8_footprint_table:
    output:
        "results/tables/fig8_footprint.csv",
    params:
        cfg=cfg("platforms", "coe.experts_max", deployment=True),
        code=CODE_VERSION,
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
    output:
        png=report(
            "results/figures/fig8_footprint.png",
            caption="../report/fig8_footprint.rst",
            category="Figure 8: footprint",
        ),
        svg="results/figures/fig8_footprint.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/fig8_footprint_figure.log",
    benchmark:
        "results/benchmarks/fig8_footprint_figure.tsv"
    script:
        "../scripts/footprint_figure.py"


rule footprint_claims:
    output:
        "results/validation/parts/footprint.csv",
    params:
        cfg=cfg(deployment=True),
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/footprint_claims.log",
    benchmark:
        "results/benchmarks/footprint_claims.tsv"
    script:
        "../scripts/footprint_claims.py"
