"""Fit the GPU constants; write them, the measured-vs-predicted table, its error summary and the engine check."""
from baselines.calibration import main as calibrate
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    out = snakemake.output  # noqa: F821
    calibrate(["--constants-out", out.constants, "--table-out", out.table, "--summary-out", out.summary,
               "--engine-out", out.engine])
