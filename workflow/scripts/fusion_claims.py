"""Write the reproduced values of the Figure 3 and Figure 6 claims."""
from rdusim.core.tables import read_table
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.tables import claims_fig3, claims_fig6

with logged(snakemake.log[0]):  # noqa: F821
    cfg, out = snakemake.params.cfg, snakemake.output  # noqa: F821
    write_csv(claims_fig3(cfg), out.fig3)
    write_csv(claims_fig6(cfg, read_table(snakemake.input.fig6)), out.fig6)  # noqa: F821
