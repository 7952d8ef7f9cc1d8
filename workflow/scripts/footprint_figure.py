"""Draw Fig. 8 from its table."""
import pandas as pd

from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_footprint

with logged(snakemake.log[0]):  # noqa: F821
    plot_footprint(pd.read_csv(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
