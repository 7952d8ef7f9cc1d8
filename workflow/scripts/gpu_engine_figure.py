"""Draw the engine model's request latency against TP beside NeMo's published points."""
import pandas as pd

from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_engine_nemo

with logged(snakemake.log[0]):  # noqa: F821
    plot_engine_nemo(pd.read_csv(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
