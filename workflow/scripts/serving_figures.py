"""Draw the serving figures."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged
from rdusim.report.plots import (
    plot_serving_cost,
    plot_serving_load,
    plot_serving_policies,
)

with logged(snakemake.log[0]):  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    plot_serving_load(read_table(inp.load), [out.load, out.load_svg])
    plot_serving_policies(read_table(inp.policies), [out.policies, out.policies_svg])
    plot_serving_cost(read_table(inp.cost), [out.cost, out.cost_svg])
