"""Replay the public online-serving measurements with the serving simulator; write the table, its summary
and the figure (rdusim/report/online_serving.py)."""
from baselines.gpu import GpuConstants
from rdusim.core.jit import use_threads
from rdusim.report.online_serving import online_serving_summary, online_serving_table
from rdusim.report.online_serving_plots import plot_online_serving
from rdusim.report.pipeline import logged, write_csv
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    use_threads(snakemake.threads)  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821
    out = snakemake.output  # noqa: F821
    table = online_serving_table()
    write_csv(table, out.table)
    write_csv(online_serving_summary(table), out.summary)
    plot_online_serving(table, [out.png, out.svg])
