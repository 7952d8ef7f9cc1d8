"""Render one result table as an HTML page for the report (Snakemake shows HTML inline)."""
from pathlib import Path

from rdusim.core.tables import read_table
from rdusim.report.html import table_page
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    src, title = snakemake.input[0], snakemake.params.title  # noqa: F821
    Path(snakemake.output[0]).write_text(table_page(read_table(src), title, src))  # noqa: F821
