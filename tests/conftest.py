import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles for the property-based suites (tests/test_fuzz.py). `ci` is the default and runs
# in `make test` (fixed examples, so a failure reproduces); `nightly` explores ten times more, with a
# fresh random seed each run: pytest tests/test_fuzz.py --hypothesis-profile nightly
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True, suppress_health_check=_SLOW_OK,
                          print_blob=True)
settings.register_profile("nightly", max_examples=1500, deadline=None, suppress_health_check=_SLOW_OK,
                          print_blob=True)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session", autouse=True)
def template_cache(tmp_path_factory):
    """GPU kernel templates are cached in a fresh directory for the session (subprocesses inherit it): the
    suite builds each template it uses once, and never reads or writes the user's cache."""
    old = os.environ.get("RDUSIM_CACHE_DIR")
    os.environ["RDUSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("rdusim-cache"))
    yield
    if old is None:
        del os.environ["RDUSIM_CACHE_DIR"]
    else:
        os.environ["RDUSIM_CACHE_DIR"] = old


# SLURM client commands the Snakemake SLURM plugin runs when Snakemake starts (it queries the controller with
# `scontrol show config` while building its options, in every snakemake process, whatever the executor).
SLURM_COMMANDS = ("scontrol", "sinfo", "squeue", "sacct", "sacctmgr", "sbatch", "scancel", "srun", "salloc")


@pytest.fixture(scope="session", autouse=True)
def no_slurm_controller(tmp_path_factory):
    """No test talks to a SLURM cluster, even where one answers: the SLURM client commands are replaced on
    PATH (for the session and its subprocesses) by stubs that fail at once, and SLURM job variables are
    removed. The SLURM profile test is a dry run, which needs no cluster. The one exception is the real
    cluster run (tests/test_slurm.py), which CI starts in a pytest process of its own with RDUSIM_SLURM=1
    after starting the cluster: only that opt-in reaches the SLURM commands."""
    stubs = tmp_path_factory.mktemp("slurm-stubs")
    if os.environ.get("RDUSIM_SLURM") == "1":
        yield stubs
        return
    for name in SLURM_COMMANDS:
        path = stubs / name
        path.write_text("#!/bin/sh\necho 'tests: no SLURM cluster' >&2\nexit 1\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    saved = dict(os.environ)
    os.environ["PATH"] = f"{stubs}{os.pathsep}{os.environ.get('PATH', '')}"
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        del os.environ[key]
    yield stubs
    os.environ.clear()
    os.environ.update(saved)
