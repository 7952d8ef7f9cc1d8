# Samba-CoE scenarios: Figures 2, 7 and Table 2, and a sensitivity sweep.


rule coe_tables:
    input:
        constants="results/calibration/gpu_constants.yaml",
        code=LIBRARY_CODE,
    output:
        fig2=report("results/tables/fig2_breakdown.csv", caption="../report/fig2.rst", category="Figure 2: CoE breakdown"),
        fig7="results/tables/fig7_latency_vs_experts.csv",
        table2=report(
            "results/tables/table2_coe_speedups.csv", caption="../report/table2.rst", category="Table 2: CoE speedups"
        ),
        sensitivity="results/tables/coe_sensitivity.csv",
    params:
        coe=coe_params(),
        platforms=config["platforms"],
        sensitivity=config.get("sensitivity", {}),
    conda:
        "../../environment.yml"
    log:
        "results/logs/coe_tables.log",
    benchmark:
        "results/benchmarks/coe_tables.tsv"
    script:
        "../scripts/coe_tables.py"


rule coe_figures:
    input:
        fig2="results/tables/fig2_breakdown.csv",
        fig7="results/tables/fig7_latency_vs_experts.csv",
        sensitivity="results/tables/coe_sensitivity.csv",
        code=LIBRARY_CODE,
    output:
        fig2=report("results/figures/fig2_breakdown.png", caption="../report/fig2.rst", category="Figure 2: CoE breakdown"),
        fig2_svg="results/figures/fig2_breakdown.svg",
        fig7=report("results/figures/fig7_latency_vs_experts.png", caption="../report/fig7.rst",
                    category="Figure 7: CoE latency"),
        fig7_svg="results/figures/fig7_latency_vs_experts.svg",
        fig7m=report("results/figures/fig7_latency_vs_experts_measured.png", caption="../report/fig7.rst",
                     category="Figure 7: CoE latency"),
        fig7m_svg="results/figures/fig7_latency_vs_experts_measured.svg",
        sens=report("results/figures/coe_sensitivity.png", caption="../report/sensitivity.rst",
                    category="Table 2: CoE speedups"),
        sens_svg="results/figures/coe_sensitivity.svg",
    conda:
        "../../environment.yml"
    log:
        "results/logs/coe_figures.log",
    benchmark:
        "results/benchmarks/coe_figures.tsv"
    script:
        "../scripts/coe_figures.py"


rule coe_claims:
    input:
        table2="results/tables/table2_coe_speedups.csv",
        code=LIBRARY_CODE,
    output:
        "results/validation/parts/table2.csv",
    conda:
        "../../environment.yml"
    log:
        "results/logs/coe_claims.log",
    benchmark:
        "results/benchmarks/coe_claims.tsv"
    script:
        "../scripts/coe_claims.py"
