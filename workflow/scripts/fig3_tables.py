"""Write the Figure 3 tables: operational intensity, fused pipeline stages, roofline ridge points."""
from rdusim.report.pipeline import logged, write_csv
from rdusim.report.tables import (
    fig3_operational_intensity,
    fig3_pipeline,
    fig3_rooflines,
)

with logged(snakemake.log[0]):  # noqa: F821
    cfg, out = snakemake.params.cfg, snakemake.output  # noqa: F821
    write_csv(fig3_operational_intensity(cfg), out.intensity)
    write_csv(fig3_pipeline(cfg), out.pipeline)
    write_csv(fig3_rooflines(cfg), out.rooflines)
