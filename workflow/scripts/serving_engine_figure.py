"""Draw the single-model serving figure."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged
from rdusim.report.serve_plots import plot_serving_engines, plot_serving_placement

with logged(snakemake.log[0]):  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    plot_serving_engines(read_table(inp.engines), read_table(inp.capacity), [out.png, out.svg])
    plot_serving_placement(read_table(inp.placement), [out.placement, out.placement_svg])
