"""Render every result table but the sweeps' as an HTML page for the report, in one process (Snakemake
shows HTML inline); each page opens with the article's values it reproduces (from claims.csv)."""
from pathlib import Path

from rdusim.core.tables import read_table
from rdusim.report.html import page_claims, table_page
from rdusim.report.pipeline import logged

with logged(snakemake.log[0]):  # noqa: F821
    inp, params = snakemake.input, snakemake.params  # noqa: F821
    claims = read_table(inp.claims)
    for table, title, page in zip(inp.tables, params.titles, snakemake.output, strict=True):  # noqa: F821
        Path(page).write_text(table_page(read_table(table), title, table, page_claims(Path(page).stem, claims)))
