"""Draw the single-model serving figure."""
import pandas as pd

from rdusim.report.pipeline import logged
from rdusim.report.serve_plots import plot_serving_engines, plot_serving_placement

with logged(snakemake.log[0]):  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    plot_serving_engines(pd.read_csv(inp.engines), pd.read_csv(inp.capacity), [out.png, out.svg])
    plot_serving_placement(pd.read_csv(inp.placement), [out.placement, out.placement_svg])
