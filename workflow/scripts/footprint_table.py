"""Write the Fig. 8 capacity table (nodes needed per platform and expert count)."""
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.tables import fig8_footprint

with logged(snakemake.log[0]):  # noqa: F821
    write_csv(fig8_footprint(snakemake.params.cfg), snakemake.output[0])  # noqa: F821
