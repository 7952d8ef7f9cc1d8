"""Write the Figure 6 table: every Table 1 run unfused, fused SO and fused HO."""
from rdusim.core.jit import use_threads
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.tables import fig6_fusion

with logged(snakemake.log[0]):  # noqa: F821
    use_threads(snakemake.threads)  # noqa: F821
    write_csv(fig6_fusion(snakemake.params.cfg), snakemake.output[0])  # noqa: F821
