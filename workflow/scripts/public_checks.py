"""Write the table of public per-user rates against the model (rdusim/data/public_checks.yaml)."""
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.speculative import public_checks_table

with logged(snakemake.log[0]):  # noqa: F821
    write_csv(public_checks_table(), snakemake.output[0])  # noqa: F821
