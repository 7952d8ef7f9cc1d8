# Shared helpers for the rules: the config keys each rule reads, and one version of the library code.
# A rule passes exactly the keys it reads as `params.cfg` (its script reads nothing else), so changing
# one config value reruns only the rules that read it; and it passes the library's code version as
# `params.code`, so a change to any library file reruns it without listing every file as an input.
import atexit
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from rdusim.report.stamp import build_stamp, open_on_front_page, read_stamp, results_staleness, staleness


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


# ----------------------------------------------------------------- build stamp, stale report, numba
REPORT = "results/report.html"
FRONT_PAGE = "results/report/summary.html"
REPORT_SHOWS = ["results/report", "results/figures"]
BUILD_STAMP = build_stamp(config, CODE_VERSION, workflow.basedir)


def _report_target(argv):
    """The file after --report on the command line (Snakemake's default report.html), or None."""
    for i, arg in enumerate(argv):
        if arg == "--report":
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            return nxt if nxt.endswith((".html", ".zip")) else "report.html"
        if arg.startswith("--report="):
            return arg.split("=", 1)[1]
    return None


def _say(message):
    print(f"\nrdusim: {message}\n", file=sys.stderr)


def check_report_at_exit():
    """When Snakemake exits (a run, "Nothing to be done", a dry run or --report): after --report, make
    the report open on its front page, stamp it with the results' build and say when those results do
    not match the current config or code; otherwise say when results/report.html is stale.
    RDUSIM_REPORT_FOLLOWS=1 (set by `make reproduce`, which builds the report next) silences the latter."""
    target = _report_target(sys.argv)
    if target is not None:
        results = read_stamp(FRONT_PAGE)
        if results is not None and open_on_front_page(target, results):
            print(f"rdusim: {target} opens on its front page; built from commit {results['commit']}, "
                  f"config {results['config']}", file=sys.stderr)
        problem = results_staleness(FRONT_PAGE, BUILD_STAMP)
        if problem:
            _say(f"{target} shows stale results: {problem}.\n    Run `snakemake --cores N` first, then "
                 f"`snakemake --report {target}` again.")
        return
    if os.environ.get("RDUSIM_REPORT_FOLLOWS") == "1":
        return
    problem = staleness(REPORT, REPORT_SHOWS, BUILD_STAMP)
    if problem:
        _say(f"{problem}; bring results up to date and rebuild it with:\n"
             f"    snakemake --cores N && snakemake --report {REPORT}")


# Numba's kernels, compiled once into its on-disk cache by the first job (rule numba_kernels): every rule
# that runs a kernel takes this file as an input, so no two jobs compile the same functions, and the
# rules that run none (Table 1, Fig. 3, Fig. 8) use the other cores meanwhile.
NUMBA_KERNELS = "results/logs/numba_kernels.done"


if workflow.is_main_process:
    atexit.register(check_report_at_exit)


# Published data the library ships (baselines/data), wherever the package is installed: inputs of rules
# that read a data file, so that a new copy of it reruns them.
BASELINES_DATA = Path(importlib.util.find_spec("baselines").submodule_search_locations[0]) / "data"
