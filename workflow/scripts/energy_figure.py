"""Draw the energy and cost figure from its tables."""
import pandas as pd

from rdusim.report.energy_plots import plot_energy
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    plot_energy(pd.read_csv(snakemake.input.table2), pd.read_csv(snakemake.input.fig8),  # noqa: F821
                [snakemake.output.png, snakemake.output.svg])  # noqa: F821
