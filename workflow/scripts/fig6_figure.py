"""Draw Figure 6 from its table."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_fusion

with logged(snakemake.log[0]):  # noqa: F821
    plot_fusion(read_table(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
