# Shared helpers for the rules: the config slices each rule depends on, and the library code.
# A rule passes the slice it uses as `params`, so changing one config value reruns only its
# dependants; it lists the library's code and data files as input, so a model change reruns it.
from pathlib import Path

LIBRARY_CODE = sorted(
    str(p)
    for package in ("rdusim", "benchmarks", "baselines")
    for pattern in ("**/*.py", "**/*.yaml")
    for p in Path(workflow.basedir, package).glob(pattern)
)


def coe_params():
    return dict(config["coe"])


def all_platforms():
    return config["platforms"]["rdu"] + config["platforms"]["gpu"]


def sweep_shards(wildcards):
    """The shard files of a sweep (config: sweeps.<name>.shards)."""
    n = int(config["sweeps"][wildcards.sweep]["shards"])
    return expand("results/sweeps/{sweep}/shard_{shard}.csv", sweep=wildcards.sweep, shard=range(n))
