"""Draw Fig. 8 from its table."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_footprint

with logged(snakemake.log[0]):  # noqa: F821
    plot_footprint(read_table(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
