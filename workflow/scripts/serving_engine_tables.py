"""Run the single-model serving study: deployments against offered load, and capacity at p99 TTFT bounds."""
from baselines.gpu import GpuConstants
from rdusim.core.jit import use_threads
from rdusim.report.engine_tables import serving_capacity, serving_engines, serving_placement
from rdusim.report.pipeline import logged, write_csv
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    use_threads(snakemake.threads)  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821
    cfg, out = snakemake.params.cfg, snakemake.output  # noqa: F821
    write_csv(serving_engines(cfg), out.engines)
    write_csv(serving_capacity(cfg), out.capacity)
    write_csv(serving_placement(cfg), out.placement)
