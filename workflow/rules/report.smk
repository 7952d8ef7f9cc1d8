# The report's pages: every result table as HTML (Snakemake's report shows HTML inline; a CSV only
# downloads) and a front page summarising the claims. `snakemake --report results/report.html` builds
# the report from these; every Snakemake run says when the report is stale (common.smk).

# name: (CSV, report category, caption file under workflow/report, title)
REPORT_TABLES = {
    "table1_benchmarks": ("results/tables/table1_benchmarks.csv", "Table 1: benchmarks", "table1.rst",
                          "Table 1: the benchmarks and their computed sizes"),
    "fig8_footprint": ("results/tables/fig8_footprint.csv", "Figure 8: footprint", "fig8_footprint.rst",
                       "Figure 8: nodes needed per platform and expert count"),
    "fig3_operational_intensity": ("results/tables/fig3_operational_intensity.csv", "Figure 3: operational intensity",
                                   "fig3.rst", "Figure 3a: Monarch FFT operational intensity per fusion level"),
    "fig3_pipeline": ("results/tables/fig3_pipeline.csv", "Figure 3: operational intensity", "fig3.rst",
                      "Figure 3b: units per stage of the fully fused pipeline"),
    "fig3_rooflines": ("results/tables/fig3_rooflines.csv", "Figure 3: operational intensity", "fig3.rst",
                       "Figure 3: roofline ceilings and ridge points"),
    "fig6_fusion": ("results/tables/fig6_fusion.csv", "Figure 6: operator fusion", "fig6.rst",
                    "Figure 6: every Table 1 run unfused, fused SO and fused HO"),
    "gpu_calibration": ("results/validation/gpu_calibration.csv", "GPU baselines", "gpu_calibration.rst",
                        "GPU model: measured vs predicted"),
    "gpu_engine_nemo": ("results/validation/gpu_engine_nemo.csv", "GPU baselines", "gpu_engine_nemo.rst",
                        "GPU engine model vs NeMo's published latencies (H100 fitted, A100 predicted)"),
    "gpu_calibration_summary": ("results/validation/gpu_calibration_summary.csv", "GPU baselines",
                                "gpu_calibration.rst", "GPU model: median and maximum error per dataset, GPU and mode"),
    "measured_latency": ("results/validation/measured_latency.csv", "GPU validation", "gpu_validation_table.rst",
                         "GPU model vs 834 independent measurements, row by row"),
    "gpu_validation_summary": ("results/validation/gpu_validation_summary.csv", "GPU validation",
                               "gpu_validation_table.rst", "GPU validation: error per source, GPU, stack, metric and split"),
    "gpu_validation_crossval": ("results/validation/gpu_validation_crossval.csv", "GPU validation",
                                "gpu_validation_table.rst", "GPU validation: fitted on one GPU, predicting the other"),
    "fig2_breakdown": ("results/tables/fig2_breakdown.csv", "Figure 2: CoE breakdown", "fig2.rst",
                       "Figure 2: switching vs execution for one expert"),
    "fig7_latency_vs_experts": ("results/tables/fig7_latency_vs_experts.csv", "Figure 7: CoE latency",
                                "fig7_table.rst", "Figure 7: expected CoE latency vs experts"),
    "table2_coe_speedups": ("results/tables/table2_coe_speedups.csv", "Table 2: CoE speedups", "table2.rst",
                            "Table 2: SN40L node speedups over DGX A100 and H100"),
    "table2_vs_experts": ("results/tables/table2_vs_experts.csv", "Table 2: CoE speedups", "table2_vs_experts.rst",
                          "Table 2's overall cells against the expert count"),
    "sn40l_inferred": ("results/validation/sn40l_inferred.csv", "Table 2: CoE speedups", "sn40l_inferred.rst",
                       "SN40L latencies recovered from Table 2 and the published GPU latencies"),
    "sn40l_public": ("results/validation/sn40l_public.csv", "Table 2: CoE speedups", "sn40l_public.rst",
                     "Every public SN40L number: published against predicted, fitted or predicted"),
    "coe_sensitivity": ("results/tables/coe_sensitivity.csv", "Table 2: CoE speedups", "sensitivity.rst",
                        "Sensitivity of the BS 8 speedup over DGX H100"),
    "serving_load": ("results/tables/serving_load.csv", "Serving simulation", "serving.rst",
                     "Serving: p99 latency vs offered load"),
    "serving_policies": ("results/tables/serving_policies.csv", "Serving simulation", "serving_policies.rst",
                         "Serving: HBM cache policies vs routing skew"),
    "serving_cost": ("results/tables/serving_cost.csv", "Serving simulation", "serving_cost.rst",
                     "Serving: nodes needed for a target load"),
    "coe_vs_moe": ("results/tables/coe_vs_moe.csv", "Beyond the article: CoE vs MoE", "coe_vs_moe.rst",
                   "CoE vs MoE on the three tiers: latency, throughput and where the weights live"),
    "moe_hot_experts": ("results/tables/moe_hot_experts.csv", "Beyond the article: CoE vs MoE", "moe_hot_experts.rst",
                        "MoE on the SN40L: routed experts kept in HBM against decode time"),
    "public_checks": ("results/validation/public_checks.csv", "Beyond the article: CoE vs MoE", "public_checks.rst",
                      "Public per-user rates: Llama 3.1 with speculative decoding, DeepSeek-R1, maximum throughput"),
    "public_checks_draft_tokens": ("results/validation/public_checks_draft_tokens.csv", "Beyond the article: CoE vs MoE",
                                   "public_checks.rst", "Speculative decoding: the assumed draft length against the 405B check"),
    "serving_engines": ("results/tables/serving_engines.csv", "Serving simulation", "serving_engines.rst",
                        "Serving one model: iteration-level engines vs static batches"),
    "serving_capacity": ("results/tables/serving_capacity.csv", "Serving simulation", "serving_engines.rst",
                         "Serving one model: capacity at p99 TTFT bounds"),
    "online_serving": ("results/validation/online_serving.csv", "Serving simulation", "online_serving.rst",
                       "Serving one model against published online-serving measurements (never fitted)"),
    "online_serving_summary": ("results/validation/online_serving_summary.csv", "Serving simulation",
                               "online_serving.rst", "Online-serving validation: median and largest error"),
    "max_throughput": ("results/validation/max_throughput.csv", "Serving simulation", "max_throughput.rst",
                       "Max-load throughput against TensorRT-LLM's perf overview (extra validation, never fitted)"),
    "max_throughput_summary": ("results/validation/max_throughput_summary.csv", "Serving simulation",
                               "max_throughput.rst", "Max-load throughput: median errors and sensitivities"),
    "serving_placement": ("results/tables/serving_placement.csv", "Serving simulation", "serving_placement.rst",
                          "Serving a CoE: where experts run (TP8 one at a time vs groups at once)"),
    "table2_energy": ("results/tables/table2_energy.csv", "Energy and cost", "energy_table2.rst",
                      "Table 2's scenarios in energy and cost, with the SN40L break-even power"),
    "fig8_energy": ("results/tables/fig8_energy.csv", "Energy and cost", "energy_fig8.rst",
                    "Fig. 8's footprint in energy and cost"),
    "power_splitwise": ("results/validation/power_splitwise.csv", "Energy and cost", "power_validation.rst",
                        "Power model validation: Splitwise's A100 power"),
    "power_public": ("results/validation/power_public.csv", "Energy and cost", "power_validation.rst",
                     "Power model validation: public NVML readings (never fitted)"),
    "claims": ("results/validation/claims.csv", "Validation against the article", "claims.rst",
               "Every claim of the article: paper, reproduced, pass or fail"),
}
REPORT_TABLES.update({
    f"sweep_{name}": (f"results/tables/sweep_{name}.csv", "Design-space sweeps", "sweep.rst", f"Sweep {name!r}")
    for name in config["sweeps"]
})
# Figure 7's two figures and its table, one subcategory each (in one category every result needs one).
FIG7_SUBCATEGORY = {"fig7_latency_vs_experts": "table (both profiles)"}


# Every page but the sweeps' in one job: a page takes milliseconds, a job's start (Python, pandas) a
# second, and a fresh clone's first run has 2 cores for about 70 jobs. Each page is its own report
# item, captioned by its topic's text.
TABLE_PAGES = [name for name in REPORT_TABLES if not name.startswith("sweep_")]


rule table_pages:
    input:
        tables=[REPORT_TABLES[name][0] for name in TABLE_PAGES],
        claims="results/validation/claims.csv",  # the article's values the page reproduces open it
    output:
        [
            report(
                f"results/report/{name}.html",
                caption=f"../report/{REPORT_TABLES[name][2]}",
                category=REPORT_TABLES[name][1],
                subcategory=FIG7_SUBCATEGORY.get(name),
            )
            for name in TABLE_PAGES
        ],
    params:
        titles=[REPORT_TABLES[name][3] for name in TABLE_PAGES],
        code=CODE_VERSION,
    conda:
        "../../environment.yml"
    log:
        "results/logs/table_pages.log",
    benchmark:
        "results/benchmarks/table_pages.tsv"
    script:
        "../scripts/table_pages.py"


# A sweep's page, one job each: the default sweep's in every run, any other on request.
rule table_html:
    input:
        table=lambda wc: REPORT_TABLES[wc.name][0],
        claims="results/validation/claims.csv",
    output:
        report(
            "results/report/{name}.html",
            caption="../report/table.rst",
            category=lambda wc: REPORT_TABLES[wc.name][1],
        ),
    params:
        title=lambda wc: REPORT_TABLES[wc.name][3],
        caption=lambda wc: Path(workflow.basedir, "workflow/report", REPORT_TABLES[wc.name][2]).read_text(),
        code=CODE_VERSION,
    wildcard_constraints:
        name="|".join(name for name in REPORT_TABLES if name.startswith("sweep_")),
    conda:
        "../../environment.yml"
    log:
        "results/logs/table_html/{name}.log",
    benchmark:
        "results/benchmarks/table_html/{name}.tsv"
    script:
        "../scripts/table_html.py"


rule front_page:
    input:
        claims="results/validation/claims.csv",
        table2="results/tables/table2_coe_speedups.csv",
        gpu_validation="results/validation/gpu_validation_summary.csv",
    output:
        report(FRONT_PAGE, caption="../report/summary.rst", category="0 Summary"),
    params:
        code=CODE_VERSION,
        stamp=BUILD_STAMP,  # commit, version, config hash: the page says what it was built from
    conda:
        "../../environment.yml"
    log:
        "results/logs/front_page.log",
    benchmark:
        "results/benchmarks/front_page.tsv"
    script:
        "../scripts/front_page.py"
