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
