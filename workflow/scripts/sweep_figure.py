"""Draw a sweep's heatmaps, the shipped platforms' point (and Table 2's expert count) outlined."""
from rdusim.core.tables import read_table
from rdusim.report.coe_tables import table2_experts
from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_sweep
from rdusim.scenarios.sweep import default_point

with logged(snakemake.log[0]):  # noqa: F821
    default = dict(default_point(), experts=table2_experts(snakemake.params.cfg))  # noqa: F821
    plot_sweep(read_table(snakemake.input.table), [snakemake.output.png, snakemake.output.svg], default)  # noqa: F821
