"""Run the serving simulations: load curves, cache policies, nodes for a target load."""
from baselines.gpu import GpuConstants
from rdusim.core.jit import use_threads
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.serve_tables import serving_cost, serving_load, serving_policies
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    use_threads(snakemake.threads)  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821
    cfg, out = snakemake.params.cfg, snakemake.output  # noqa: F821
    write_csv(serving_load(cfg), out.load)
    write_csv(serving_policies(cfg), out.policies)
    write_csv(serving_cost(cfg), out.cost)
