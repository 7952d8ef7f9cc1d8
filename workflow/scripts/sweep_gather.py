"""Gather a sweep's shards into one table, in point order."""
import pandas as pd

from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged, write_csv
from rdusim.scenarios.sweep import AXES

with logged(snakemake.log[0]):  # noqa: F821
    table = pd.concat([read_table(p) for p in snakemake.input.shards], ignore_index=True)  # noqa: F821
    write_csv(table.sort_values(list(AXES), kind="stable"), snakemake.output[0])  # noqa: F821
