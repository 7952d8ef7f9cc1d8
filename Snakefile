# rdusim pipeline: regenerates every table and figure of the SN40L CoE article under results/.
#   snakemake --cores 8                         run it
#   snakemake --report results/report.html    the HTML report (every run says when it is stale)
# Rules live in workflow/rules; each calls a thin script in workflow/scripts that calls the library.
import sys
from pathlib import Path

from snakemake.utils import min_version

from rdusim.report.configcheck import check_config, check_config_file
from rdusim.core.errors import ConfigError

min_version("9.0")

# The config files through rdusim's strict YAML loader first (duplicate keys, alias bombs, size), before
# Snakemake's own parser reads them and silently keeps the last of two equal keys.
try:
    for _path in ["config/config.yaml", *(workflow.overwrite_configfiles or [])]:
        if Path(_path).exists():
            check_config_file(_path)
except ConfigError as err:
    sys.exit(f"rdusim config error: {err}")


configfile: "config/config.yaml"


try:
    check_config(config, workflow.source_path("workflow/schemas/config.schema.yaml"))
except ConfigError as err:
    sys.exit(f"rdusim config error: {err}")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/table1.smk"
include: "workflow/rules/footprint.smk"
include: "workflow/rules/fusion.smk"
include: "workflow/rules/gpu.smk"
include: "workflow/rules/coe.smk"
include: "workflow/rules/serving.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/energy.smk"
include: "workflow/rules/moe.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/tables/table1_benchmarks.csv",
        "results/tables/fig8_footprint.csv",
        expand("results/figures/fig8_footprint.{ext}", ext=["png", "svg"]),
        "results/tables/fig3_operational_intensity.csv",
        expand("results/figures/fig3_roofline.{ext}", ext=["png", "svg"]),
        "results/tables/fig6_fusion.csv",
        expand("results/figures/fig6_fusion.{ext}", ext=["png", "svg"]),
        "results/validation/gpu_calibration.csv",
        "results/validation/gpu_calibration_summary.csv",
        expand("results/figures/gpu_calibration.{ext}", ext=["png", "svg"]),
        "results/validation/gpu_engine_nemo.csv",
        expand("results/figures/gpu_engine_nemo.{ext}", ext=["png", "svg"]),
        "results/validation/measured_latency.csv",
        "results/validation/gpu_validation_summary.csv",
        "results/validation/gpu_validation_crossval.csv",
        expand("results/figures/{fig}.{ext}", fig=["gpu_validation", "gpu_validation_errors"], ext=["png", "svg"]),
        "results/tables/fig2_breakdown.csv",
        "results/tables/fig7_latency_vs_experts.csv",
        "results/tables/table2_coe_speedups.csv",
        "results/tables/table2_vs_experts.csv",
        "results/validation/sn40l_inferred.csv",
        expand(
            "results/figures/{fig}.{ext}",
            fig=["fig2_breakdown", "fig7_latency_vs_experts", "fig7_latency_vs_experts_measured",
                 "table2_coe_speedups", "coe_sensitivity"],
            ext=["png", "svg"],
        ),
        "results/tables/serving_load.csv",
        expand("results/figures/{fig}.{ext}", fig=["serving_load", "serving_policies", "serving_cost"], ext=["png", "svg"]),
        "results/tables/coe_vs_moe.csv",
        "results/tables/moe_hot_experts.csv",
        "results/validation/public_checks.csv",
        "results/validation/public_checks_draft_tokens.csv",
        expand("results/figures/coe_vs_moe.{ext}", ext=["png", "svg"]),
        expand("results/figures/{fig}.{ext}", fig=["serving_engines", "serving_placement"], ext=["png", "svg"]),
        "results/validation/online_serving_summary.csv",
        expand("results/figures/online_serving.{ext}", ext=["png", "svg"]),
        "results/validation/max_throughput_summary.csv",
        expand("results/figures/max_throughput.{ext}", ext=["png", "svg"]),
        "results/tables/sweep_default.csv",
        expand("results/figures/sweep_default.{ext}", ext=["png", "svg"]),
        "results/validation/claims.csv",
        "results/tables/table2_energy.csv",
        expand("results/figures/energy_comparison.{ext}", ext=["png", "svg"]),
        expand("results/report/{name}.html", name=TABLE_PAGES),
        "results/report/sweep_default.html",
        "results/report/summary.html",
    default_target: True



rule numba_kernels:
    output:
        NUMBA_KERNELS,
    priority: 100  # first: most jobs wait for it
    params:
        code=CODE_VERSION,  # a code change compiles again
    conda:
        "environment.yml"
    log:
        "results/logs/numba_kernels.log",
    benchmark:
        "results/benchmarks/numba_kernels.tsv"
    script:
        "workflow/scripts/numba_kernels.py"
