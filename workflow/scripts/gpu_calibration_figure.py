"""Draw measured vs predicted GPU times."""
import pandas as pd

from rdusim.report.pipeline import logged
from rdusim.report.plots import plot_gpu_calibration

with logged(snakemake.log[0]):  # noqa: F821
    plot_gpu_calibration(pd.read_csv(snakemake.input.table), [snakemake.output.png, snakemake.output.svg])  # noqa: F821
