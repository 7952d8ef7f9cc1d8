# Shared helpers for the rules: the config keys each rule reads, and one version of the library code.
# A rule passes exactly the keys it reads as `params.cfg` (its script reads nothing else), so changing
# one config value reruns only the rules that read it; and it passes the library's code version as
# `params.code`, so a change to any library file reruns it without listing every file as an input.
import hashlib
import importlib.util
import sys
from pathlib import Path


def _code_version() -> str:
    """A hash of every Python and YAML file of the library that runs (rdusim, benchmarks, baselines,
    wherever they are installed)."""
    digest = hashlib.sha256()
    for package in ("rdusim", "benchmarks", "baselines"):
        root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                digest.update(f"{package}/{path.relative_to(root)}".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()

# The coe keys that sweep the figures; every other coe key is a deployment choice (coe_defaults.yaml).
COE_AXES = ("experts_max", "batch_sizes", "output_tokens", "profiles")


def cfg(*keys, deployment=False):
    """The part of the config that a job reads, given as top-level or dotted keys (``"coe.experts_max"``), and with
    ``deployment=True`` every deployment key of ``coe`` (all but the figure axes)."""
    out = {}
    for key in keys:
        *parents, last = key.split(".")
        src, dst = config, out
        for p in parents:
            src, dst = src[p], dst.setdefault(p, {})
        if last in src:
            dst[last] = src[last]
    if deployment:
        out.setdefault("coe", {}).update({k: v for k, v in config["coe"].items() if k not in COE_AXES})
    return out


def coe_params():
    return dict(config["coe"])


def all_platforms():
    return config["platforms"]["rdu"] + config["platforms"]["gpu"]


def sweep_shards(wildcards):
    """The shard files of a sweep (config: sweeps.<name>.shards)."""
    n = int(config["sweeps"][wildcards.sweep]["shards"])
    return expand("results/sweeps/{sweep}/shard_{shard}.csv", sweep=wildcards.sweep, shard=range(n))


def warn_if_report_stale(report_path, result_dirs):
    """Say so when the HTML report is missing or older than the results it shows (the report is
    built by a separate command, `snakemake --report`, so a plain run does not refresh it)."""
    report_file = Path(report_path)
    newest = max((p.stat().st_mtime for d in result_dirs for p in Path(d).glob("*") if p.is_file()), default=0)
    if report_file.exists() and report_file.stat().st_mtime >= newest:
        return
    state = "is older than the results" if report_file.exists() else "has not been built"
    print(f"\nrdusim: {report_path} {state}; rebuild it with:\n"
          f"    snakemake --report {report_path}\n", file=sys.stderr)

# Published data the library ships (baselines/data), wherever the package is installed: inputs of rules
# that read a data file, so that a new copy of it reruns them.
BASELINES_DATA = Path(importlib.util.find_spec("baselines").submodule_search_locations[0]) / "data"
