"""Design-space sweeps: sharding covers every point once; values agree with the CoE model; SLURM profile."""
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from rdusim.core.errors import ConfigError
from rdusim.scenarios.coe import coe_latency
from rdusim.scenarios.sweep import AXES, points, run_shard, size

SPEC = dict(hbm_capacity_GB=[64], hbm_bandwidth_GBps=[2000], ddr_capacity_TB=[1.5], ddr_to_hbm_GBps=[125],
            host_link_GBps=[64, 128], experts=[40, 148, 400], batch=[1, 8], gen=[20], zipf=[0.0, 1.0])


def test_shards_partition_the_points():
    n = size(SPEC)
    shards = [run_shard(SPEC, i, 3, progress=False) for i in range(3)]
    merged = pd.concat(shards).sort_index()
    assert len(merged) == n and merged.index.is_unique
    pd.testing.assert_frame_equal(merged[list(AXES)].reset_index(drop=True), points(SPEC))


def test_default_hardware_point_equals_coe_model():
    t = run_shard(SPEC, 0, 1, progress=False)
    r = t[(t.host_link_GBps == 64) & (t.experts == 40) & (t.batch == 8) & (t.zipf == 0.0)].iloc[0]
    assert r.sn40l_ms == pytest.approx(coe_latency("sn40l-node", 40, 8, 20).total_s * 1e3, rel=1e-9)
    assert r.dgx_h100_ms == pytest.approx(coe_latency("dgx-h100", 40, 8, 20).total_s * 1e3, rel=1e-9)
    big = t[t.experts == 400]
    assert big.sn40l_fits.all() and not big.dgx_fits.any()


def test_bad_sweep_input_is_named():
    with pytest.raises(ConfigError, match="zipf"):
        points({k: v for k, v in SPEC.items() if k != "zipf"})
    with pytest.raises(ConfigError, match="shard"):
        run_shard(SPEC, 5, 3)


def test_large_sweep_has_a_million_points(repo_root):
    cfg = yaml.safe_load((repo_root / "config/config.yaml").read_text())
    assert size(cfg["sweeps"]["large"]) >= 1_000_000
    assert size(cfg["sweeps"]["default"]) < 20_000


def test_slurm_profile_dry_run(repo_root, tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    for item in ("Snakefile", "workflow", "config", "environment.yml", "profiles"):
        src = repo_root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "-n",
                           "results/tables/sweep_large.csv"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "sweep_shard" in out and "200" in out
