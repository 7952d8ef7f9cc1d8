# Beyond the article (issue 21): a Composition of Experts against a mixture-of-experts model of
# similar size on one node, with the weights' placement over HBM and DDR / host DRAM.


rule coe_vs_moe_table:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        table="results/tables/coe_vs_moe.csv",
        hot="results/tables/moe_hot_experts.csv",
    params:
        cfg=cfg("coe_vs_moe", "moe_hot_experts", deployment=True),
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/coe_vs_moe_table.log",
    benchmark:
        "results/benchmarks/coe_vs_moe_table.tsv"
    script:
        "../scripts/coe_vs_moe_table.py"


rule coe_vs_moe_figure:
    input:
        table="results/tables/coe_vs_moe.csv",
    output:
        png=report(
            "results/figures/coe_vs_moe.png",
            caption="../report/coe_vs_moe.rst",
            category="Beyond the article: CoE vs MoE",
        ),
        svg="results/figures/coe_vs_moe.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/coe_vs_moe_figure.log",
    benchmark:
        "results/benchmarks/coe_vs_moe_figure.tsv"
    script:
        "../scripts/coe_vs_moe_figure.py"


rule public_checks:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        table="results/validation/public_checks.csv",
        draft_tokens="results/validation/public_checks_draft_tokens.csv",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/public_checks.log",
    benchmark:
        "results/benchmarks/public_checks.tsv"
    script:
        "../scripts/public_checks.py"
