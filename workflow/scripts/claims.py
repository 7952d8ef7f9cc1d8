"""Gather every stage's reproduced values into results/validation/claims.csv."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.validation import claims_frame

with logged(snakemake.log[0]):  # noqa: F821
    parts = [read_table(path) for path in snakemake.input.parts]  # noqa: F821
    write_csv(claims_frame(parts), snakemake.output[0])  # noqa: F821
