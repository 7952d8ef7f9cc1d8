# Samba-CoE scenarios: Figures 2, 7 and Table 2, and a sensitivity sweep.


rule coe_tables:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        fig2="results/tables/fig2_breakdown.csv",
        fig7="results/tables/fig7_latency_vs_experts.csv",
        table2="results/tables/table2_coe_speedups.csv",
        sensitivity="results/tables/coe_sensitivity.csv",
        vs_experts="results/tables/table2_vs_experts.csv",
        inferred="results/validation/sn40l_inferred.csv",
    params:
        cfg=cfg("platforms", "coe", "sensitivity"),
        code=CODE_VERSION,
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
        table2="results/tables/table2_coe_speedups.csv",
        sensitivity="results/tables/coe_sensitivity.csv",
        vs_experts="results/tables/table2_vs_experts.csv",
    output:
        fig2=report("results/figures/fig2_breakdown.png", caption="../report/fig2.rst", category="Figure 2: CoE breakdown"),
        fig2_svg="results/figures/fig2_breakdown.svg",
        fig7=report("results/figures/fig7_latency_vs_experts.png", caption="../report/fig7.rst",
                    category="Figure 7: CoE latency", subcategory="paper profile"),
        fig7_svg="results/figures/fig7_latency_vs_experts.svg",
        fig7m=report("results/figures/fig7_latency_vs_experts_measured.png", caption="../report/fig7_measured.rst",
                     category="Figure 7: CoE latency", subcategory="measured profile"),
        fig7m_svg="results/figures/fig7_latency_vs_experts_measured.svg",
        table2=report("results/figures/table2_coe_speedups.png", caption="../report/table2.rst",
                      category="Table 2: CoE speedups"),
        table2_svg="results/figures/table2_coe_speedups.svg",
        sens=report("results/figures/coe_sensitivity.png", caption="../report/sensitivity.rst",
                    category="Table 2: CoE speedups"),
        sens_svg="results/figures/coe_sensitivity.svg",
        vs_experts=report("results/figures/table2_vs_experts.png", caption="../report/table2_vs_experts.rst",
                          category="Table 2: CoE speedups"),
        vs_experts_svg="results/figures/table2_vs_experts.svg",
    params:
        cfg=cfg("platforms", "coe", "sensitivity"),  # the default cells outlined in the sensitivity figure
        code=CODE_VERSION,
    priority: 50  # a long job: start it as soon as its inputs exist, so the short ones fill around it
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
        fig7="results/tables/fig7_latency_vs_experts.csv",
    output:
        "results/validation/parts/table2.csv",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/coe_claims.log",
    benchmark:
        "results/benchmarks/coe_claims.tsv"
    script:
        "../scripts/coe_claims.py"
