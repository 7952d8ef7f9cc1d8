"""Render one result table as an HTML page for the report (Snakemake shows HTML inline), opening with
the article's values that the table reproduces (from claims.csv)."""
from pathlib import Path

from rdusim.core.tables import read_table

from rdusim.report.html import page_claims, table_page
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    inp, name, title = snakemake.input, snakemake.wildcards.name, snakemake.params.title  # noqa: F821
    claims = page_claims(name, read_table(inp.claims))
    Path(snakemake.output[0]).write_text(table_page(read_table(inp.table), title, inp.table, claims))  # noqa: F821
