"""Write the table "CoE vs MoE on the three tiers"."""
from rdusim.report.moe_tables import coe_vs_moe
from rdusim.report.pipeline import logged, write_csv

with logged(snakemake.log[0]):  # noqa: F821
    write_csv(coe_vs_moe(snakemake.params.cfg), snakemake.output[0])  # noqa: F821
