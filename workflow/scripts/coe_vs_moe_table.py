"""Write the table "CoE vs MoE on the three tiers"."""
from rdusim.report.moe_tables import coe_vs_moe, hot_experts_effect
from baselines.gpu import GpuConstants
from rdusim.report.pipeline import logged, write_csv
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821  (the gpu_calibration rule's fit)
    write_csv(coe_vs_moe(snakemake.params.cfg), snakemake.output.table)  # noqa: F821
    write_csv(hot_experts_effect(snakemake.params.cfg), snakemake.output.hot)  # noqa: F821
