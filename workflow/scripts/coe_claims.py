"""Write the reproduced values of the Table 2 claims (paper profile)."""
import pandas as pd

from rdusim.report.coe_tables import claims_table2
from rdusim.report.pipeline import logged, write_csv

with logged(snakemake.log[0]):  # noqa: F821
    write_csv(claims_table2({}, pd.read_csv(snakemake.input.table2)), snakemake.output[0])  # noqa: F821
