"""Draw the figure "CoE vs MoE on the three tiers" from its table."""
from rdusim.core.tables import read_table
from rdusim.report.moe_plots import plot_coe_vs_moe
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    plot_coe_vs_moe(read_table(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
