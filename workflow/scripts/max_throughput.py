"""Replay TensorRT-LLM's published max-load throughput with the serving simulator (extra validation); write
the table, its summary and the figure (rdusim/report/max_throughput.py)."""
from baselines.gpu import GpuConstants
from rdusim.core.jit import use_threads
from rdusim.report.max_throughput import load_sources, max_throughput_summary, max_throughput_table
from rdusim.report.max_throughput_plots import plot_max_throughput
from rdusim.report.pipeline import logged, write_csv
from rdusim.scenarios.predict import use_gpu_constants

with logged(snakemake.log[0]):  # noqa: F821
    use_threads(snakemake.threads)  # noqa: F821
    use_gpu_constants(GpuConstants.load(snakemake.input.constants))  # noqa: F821
    out = snakemake.output  # noqa: F821
    table = max_throughput_table()
    write_csv(table, out.table)
    write_csv(max_throughput_summary(table), out.summary)
    labels = {name: s["label"] for name, s in (load_sources().get("sensitivities") or {}).items()}
    plot_max_throughput(table, labels, [out.png, out.svg])
