"""Gather every stage's reproduced values into results/validation/claims.csv."""
import pandas as pd

from rdusim.report.pipeline import logged, write_csv
from rdusim.report.validation import claims_frame

with logged(snakemake.log[0]):  # noqa: F821
    parts = [pd.read_csv(path) for path in snakemake.input.parts]  # noqa: F821
    write_csv(claims_frame(parts), snakemake.output[0])  # noqa: F821
