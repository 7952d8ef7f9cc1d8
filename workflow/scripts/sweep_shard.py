"""Evaluate one shard of a design-space sweep (progress bar in the log)."""
from rdusim.report.pipeline import logged, write_csv
from rdusim.scenarios.sweep import run_shard

with logged(snakemake.log[0]):  # noqa: F821
    wc = snakemake.wildcards  # noqa: F821
    spec = snakemake.params.spec  # noqa: F821
    coe = snakemake.params.coe  # noqa: F821
    write_csv(run_shard(spec, int(wc.shard), int(spec["shards"]), coe=coe), snakemake.output[0])  # noqa: F821
