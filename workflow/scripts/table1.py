"""Write Table 1 (architectures and computed sizes)."""
from rdusim.pipeline import logged, write_csv
from rdusim.tables import table1_benchmarks

with logged(snakemake.log[0]):  # noqa: F821 (snakemake is injected by the script directive)
    write_csv(table1_benchmarks(snakemake.config), snakemake.output[0])  # noqa: F821
