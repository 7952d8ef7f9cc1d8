"""Write the CoE tables (Figures 2 and 7, Table 2 under every profile and against the expert count,
the SN40L latencies Table 2 implies, sensitivity), using the
GPU constants fitted by the gpu_calibration rule."""
import pandas as pd

from baselines.gpu import GpuConstants
from rdusim.report.coe_tables import (
    fig2_breakdown,
    fig7_latency_vs_experts,
    overall_vs_experts,
    sensitivity,
    table2_coe_speedups,
)
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.sn40l_runtime import inferred_table
from rdusim.scenarios.footprint import CoEDeployment
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    cfg, out = snakemake.params.cfg, snakemake.output  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821
    profiles = cfg["coe"].get("profiles", ["paper", "measured"])
    write_csv(fig2_breakdown(cfg), out.fig2)
    write_csv(fig7_latency_vs_experts(cfg), out.fig7)
    write_csv(pd.concat([table2_coe_speedups(cfg, p) for p in profiles], ignore_index=True), out.table2)
    write_csv(sensitivity(cfg), out.sensitivity)
    write_csv(overall_vs_experts(cfg), out.vs_experts)
    write_csv(inferred_table(CoEDeployment.from_config(cfg["coe"])), out.inferred)
