"""Draw measured vs predicted GPU times."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_gpu_calibration

with logged(snakemake.log[0]):  # noqa: F821
    plot_gpu_calibration(read_table(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
