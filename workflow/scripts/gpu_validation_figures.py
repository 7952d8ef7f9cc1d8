"""Draw the GPU validation: predicted vs measured per stack, and the error against batch, TP and prompt."""
from rdusim.core.tables import read_table
from rdusim.report.gpu_validation_plots import plot_error_factors, plot_predicted_vs_measured
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    out = snakemake.output  # noqa: F821
    table = read_table(snakemake.input.table)  # noqa: F821
    plot_predicted_vs_measured(table, [out.scatter_png, out.scatter_svg])
    plot_error_factors(table, [out.errors_png, out.errors_svg])
