"""Draw the engine model's request latency against TP beside NeMo's published points."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_engine_nemo

with logged(snakemake.log[0]):  # noqa: F821
    plot_engine_nemo(read_table(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
