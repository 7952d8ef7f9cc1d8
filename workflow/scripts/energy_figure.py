"""Draw the energy and cost figure from its tables."""
from rdusim.core.tables import read_table
from rdusim.report.energy_plots import plot_energy
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    plot_energy(read_table(snakemake.input.table2), read_table(snakemake.input.fig8),  # noqa: F821
                [snakemake.output.png, snakemake.output.svg])  # noqa: F821
