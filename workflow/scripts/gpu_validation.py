"""Every independent GPU measurement against the model: the table, its summary and the cross-validation."""
from rdusim.report.gpu_validation import main as validate
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    out = snakemake.output  # noqa: F821
    validate(["--table-out", out.table, "--summary-out", out.summary, "--crossval-out", out.crossval])
