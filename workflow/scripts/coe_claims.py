"""Write the reproduced values of the Table 2 claims and Fig. 7's "under 50 experts" claims (paper profile)."""
import pandas as pd

from rdusim.core.tables import read_table
from rdusim.report.coe_tables import claims_fig7, claims_table2
from rdusim.report.pipeline import logged, write_csv

with logged(snakemake.log[0]):  # noqa: F821
    parts = [claims_table2({}, read_table(snakemake.input.table2)),  # noqa: F821
             claims_fig7(read_table(snakemake.input.fig7))]  # noqa: F821
    write_csv(pd.concat(parts, ignore_index=True), snakemake.output[0])  # noqa: F821
