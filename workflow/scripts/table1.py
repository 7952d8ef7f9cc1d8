"""Write Table 1 (architectures and computed sizes)."""
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.tables import table1_benchmarks

with logged(snakemake.log[0]):  # noqa: F821 (snakemake is injected by the script directive)
    write_csv(table1_benchmarks(snakemake.params.cfg), snakemake.output[0])  # noqa: F821
