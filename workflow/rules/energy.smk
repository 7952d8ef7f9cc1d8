# Energy and cost (beyond the article): Table 2's scenarios and Fig. 8's footprint in joules per token and
# dollars per million tokens, the SN40L break-even node power, and the power model against measurements.


rule energy_tables:
    input:
        constants="results/calibration/gpu_constants.yaml",
    output:
        table2="results/tables/table2_energy.csv",
        fig8="results/tables/fig8_energy.csv",
        splitwise="results/validation/power_splitwise.csv",
        public="results/validation/power_public.csv",
    params:
        cfg=cfg("platforms", "coe"),
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/energy_tables.log",
    benchmark:
        "results/benchmarks/energy_tables.tsv"
    script:
        "../scripts/energy_tables.py"


rule energy_figure:
    input:
        table2="results/tables/table2_energy.csv",
        fig8="results/tables/fig8_energy.csv",
    output:
        png=report("results/figures/energy_comparison.png", caption="../report/energy.rst",
                   category="Energy and cost"),
        svg="results/figures/energy_comparison.svg",
    params:
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/energy_figure.log",
    benchmark:
        "results/benchmarks/energy_figure.tsv"
    script:
        "../scripts/energy_figure.py"
