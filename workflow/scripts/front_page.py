"""Write the report's front page from claims.csv, Table 2 and the GPU validation summary."""
from pathlib import Path

from rdusim.core.tables import read_table
from rdusim.report.html import front_page
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    inp = snakemake.input  # noqa: F821
    Path(snakemake.output[0]).write_text(front_page(read_table(inp.claims), read_table(inp.table2),  # noqa: F821
                                                     read_table(inp.gpu_validation),  # noqa: F821
                                                     stamp=snakemake.params.stamp))  # noqa: F821
