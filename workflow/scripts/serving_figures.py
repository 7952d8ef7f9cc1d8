"""Draw the serving figures."""
import pandas as pd

from rdusim.report.pipeline import logged
from rdusim.report.plots import (
    plot_serving_cost,
    plot_serving_load,
    plot_serving_policies,
)

with logged(snakemake.log[0]):  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    plot_serving_load(pd.read_csv(inp.load), [out.load, out.load_svg])
    plot_serving_policies(pd.read_csv(inp.policies), [out.policies, out.policies_svg])
    plot_serving_cost(pd.read_csv(inp.cost), [out.cost, out.cost_svg])
