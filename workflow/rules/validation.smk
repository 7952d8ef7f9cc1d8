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


rule sn40l_public:
    input:
        constants="results/calibration/gpu_constants.yaml",
        table2="results/tables/table2_coe_speedups.csv",
        fig7="results/tables/fig7_latency_vs_experts.csv",
        inferred="results/validation/sn40l_inferred.csv",
    output:
        "results/validation/sn40l_public.csv",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/sn40l_public.log",
    benchmark:
        "results/benchmarks/sn40l_public.tsv"
    script:
        "../scripts/sn40l_public.py"


rule online_serving:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        table="results/validation/online_serving.csv",
        summary="results/validation/online_serving_summary.csv",
        png=report("results/figures/online_serving.png", caption="../report/online_serving.rst",
                   category="Serving simulation"),
        svg="results/figures/online_serving.svg",
    params:
        code=CODE_VERSION,
    threads: 1
    conda:
        "../../environment.yml"
    log:
        "results/logs/online_serving.log",
    benchmark:
        "results/benchmarks/online_serving.tsv"
    script:
        "../scripts/online_serving.py"


rule max_throughput:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        table="results/validation/max_throughput.csv",
        summary="results/validation/max_throughput_summary.csv",
        png=report("results/figures/max_throughput.png", caption="../report/max_throughput.rst",
                   category="Serving simulation"),
        svg="results/figures/max_throughput.svg",
    params:
        code=CODE_VERSION,
    priority: 50  # a long job: start it as soon as its inputs exist, so the short ones fill around it
    threads: 1
    conda:
        "../../environment.yml"
    log:
        "results/logs/max_throughput.log",
    benchmark:
        "results/benchmarks/max_throughput.tsv"
    script:
        "../scripts/max_throughput.py"
