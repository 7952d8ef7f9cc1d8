"""Write the report's front page from claims.csv, Table 2 and the GPU validation summary."""
from pathlib import Path

import pandas as pd

from rdusim.report.html import front_page
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    inp = snakemake.input  # noqa: F821
    Path(snakemake.output[0]).write_text(front_page(pd.read_csv(inp.claims), pd.read_csv(inp.table2),  # noqa: F821
                                                     pd.read_csv(inp.gpu_validation),  # noqa: F821
                                                     stamp=snakemake.params.stamp))  # noqa: F821
