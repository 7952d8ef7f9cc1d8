"""Draw Figure 3 (roofline and fused pipeline) from its tables."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_roofline

with logged(snakemake.log[0]):  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    plot_roofline(read_table(inp.intensity), read_table(inp.rooflines), read_table(inp.pipeline), [out.png, out.svg])
