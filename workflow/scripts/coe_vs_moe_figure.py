"""Draw the figure "CoE vs MoE on the three tiers" from its table."""
import pandas as pd

from rdusim.report.moe_plots import plot_coe_vs_moe
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    plot_coe_vs_moe(pd.read_csv(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
