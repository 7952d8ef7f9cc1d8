"""A sweep through a real SLURM cluster (profiles/slurm) gives the same CSV, byte for byte, as a
local run. Needs the one-node cluster that .ci/slurm/up.sh starts (CI does, then sets RDUSIM_SLURM=1);
skipped elsewhere, so no other test touches a cluster."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(os.environ.get("RDUSIM_SLURM") != "1",
                       reason="needs a SLURM cluster: sudo bash .ci/slurm/up.sh, then RDUSIM_SLURM=1 (CI does this)"),
]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# 8 points in 3 shards: three sweep_shard jobs and the gather, each an sbatch job
SWEEP = {"shards": 3, "hbm_capacity_GB": [64], "hbm_bandwidth_GBps": [2000], "ddr_capacity_TB": [1.5],
         "ddr_to_hbm_GBps": [125], "host_link_GBps": [64], "experts": [50, 100], "batch": [1, 8], "gen": [20],
         "zipf": [0.0, 1.0]}
TARGET = "results/tables/sweep_ci.csv"


def _workflow(root: Path, dest: Path) -> Path:
    dest.mkdir()
    for item in ("Snakefile", "workflow", "config", "environment.yml", "profiles"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    cfg = yaml.safe_load((root / "config/config.yaml").read_text())
    cfg["sweeps"] = {"default": dict(cfg["sweeps"]["default"], shards=2, experts=[50], gen=[20], zipf=[0.0],
                                     hbm_capacity_GB=[64], ddr_capacity_TB=[1.5], batch=[8]), "ci": SWEEP}
    (dest / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    return dest


def test_sweep_on_slurm_matches_a_local_run(repo_root, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    on_slurm = _workflow(repo_root, tmp_path / "slurm")
    local = _workflow(repo_root, tmp_path / "local")
    proc = subprocess.run(SNAKEMAKE + ["--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "5",
                                       TARGET], cwd=on_slurm, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # numba's one compile, the 3 shards and the gather, each a SLURM job
    assert out.count("has been submitted with SLURM jobid") == 5, out[-4000:]
    assert "rule_numba_kernels" in out, out[-4000:]
    proc = subprocess.run(SNAKEMAKE + ["--cores", "2", TARGET], cwd=local, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    slurm_csv, local_csv = (on_slurm / TARGET).read_bytes(), (local / TARGET).read_bytes()
    assert slurm_csv == local_csv
    assert slurm_csv.count(b"\n") == 1 + 8
