"""Draw Figure 3 (roofline and fused pipeline) from its tables."""
import pandas as pd

from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_roofline

with logged(snakemake.log[0]):  # noqa: F821
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    plot_roofline(pd.read_csv(inp.intensity), pd.read_csv(inp.rooflines), pd.read_csv(inp.pipeline), [out.png, out.svg])
