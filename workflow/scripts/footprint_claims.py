"""Write the reproduced values of the article's capacity claims."""
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.tables import claims_footprint

with logged(snakemake.log[0]):  # noqa: F821
    write_csv(claims_footprint(snakemake.params.cfg), snakemake.output[0])  # noqa: F821
