"""Write the reproduced values of the Table 2 claims (paper profile)."""
from rdusim.core.tables import read_table
from rdusim.report.coe_tables import claims_table2
from rdusim.report.pipeline import logged, write_csv

with logged(snakemake.log[0]):  # noqa: F821
    write_csv(claims_table2({}, read_table(snakemake.input.table2)), snakemake.output[0])  # noqa: F821
