# Figure 3 (Monarch FFT operational intensity) and Figure 6 (operator fusion on the SN40L).


rule fig3_tables:
    output:
        intensity="results/tables/fig3_operational_intensity.csv",
        pipeline="results/tables/fig3_pipeline.csv",
        rooflines="results/tables/fig3_rooflines.csv",
    params:
        cfg=cfg("fusion.rdu_platform", "fusion.roofline_platforms"),
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/fig3_tables.log",
    benchmark:
        "results/benchmarks/fig3_tables.tsv"
    script:
        "../scripts/fig3_tables.py"


rule fig3_figure:
    input:
        intensity="results/tables/fig3_operational_intensity.csv",
        pipeline="results/tables/fig3_pipeline.csv",
        rooflines="results/tables/fig3_rooflines.csv",
    output:
        png=report(
            "results/figures/fig3_roofline.png",
            caption="../report/fig3.rst",
            category="Figure 3: operational intensity",
        ),
        svg="results/figures/fig3_roofline.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/fig3_figure.log",
    benchmark:
        "results/benchmarks/fig3_figure.tsv"
    script:
        "../scripts/fig3_figure.py"


rule fig6_table:
    input:
        numba=NUMBA_KERNELS,  # its kernels compiled (common.smk)
    output:
        "results/tables/fig6_fusion.csv",
    params:
        cfg=cfg("benchmarks", "fusion.rdu_platform", "fusion.tensor_parallel", "fusion.batch",
                "fusion.fftconv_sequences"),
        code=CODE_VERSION,
    threads: 1
    conda:
        "../../environment.yml"
    log:
        "results/logs/fig6_table.log",
    benchmark:
        "results/benchmarks/fig6_table.tsv"
    script:
        "../scripts/fig6_table.py"


rule fig6_figure:
    input:
        table="results/tables/fig6_fusion.csv",
    output:
        png=report(
            "results/figures/fig6_fusion.png",
            caption="../report/fig6.rst",
            category="Figure 6: operator fusion",
        ),
        svg="results/figures/fig6_fusion.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/fig6_figure.log",
    benchmark:
        "results/benchmarks/fig6_figure.tsv"
    script:
        "../scripts/fig6_figure.py"


rule fusion_claims:
    input:
        fig6="results/tables/fig6_fusion.csv",
    output:
        fig3="results/validation/parts/fig3.csv",
        fig6="results/validation/parts/fig6.csv",
    params:
        cfg=cfg("fusion.rdu_platform"),
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/fusion_claims.log",
    benchmark:
        "results/benchmarks/fusion_claims.tsv"
    script:
        "../scripts/fusion_claims.py"
