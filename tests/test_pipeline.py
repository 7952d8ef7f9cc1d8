"""End-to-end: the Snakemake pipeline on a small config in a temporary directory."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.pipeline
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _copy_workflow(root: Path, dest: Path, **coe_overrides) -> Path:
    for item in ("Snakefile", "workflow", "config", "environment.yml"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    cfg = yaml.safe_load((root / "config/config.yaml").read_text())
    cfg["coe"]["experts_max"] = 60
    cfg["coe"].update(coe_overrides)
    cfg["benchmarks"] = ["llama2-7b", "flashfftconv"]
    cfg["serving"].update(requests=2000, rates=[1, 8], experts=[100, 850])
    cfg["serving"]["cost"].update(experts=[10, 300], requests=1000)
    cfg["sweeps"] = {"default": dict(cfg["sweeps"]["default"], shards=2, hbm_bandwidth_GBps=[2000], gen=[20],
                                     batch=[1, 8], ddr_capacity_TB=[1.5])}
    (dest / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    return dest


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + list(args), cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def small_run(repo_root, tmp_path_factory):
    work = _copy_workflow(repo_root, tmp_path_factory.mktemp("pipeline"))
    proc = _run(work, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def test_pipeline_writes_results_contract(small_run):
    for rel in ("results/tables/table1_benchmarks.csv", "results/tables/fig8_footprint.csv",
                "results/figures/fig8_footprint.png", "results/figures/fig8_footprint.svg",
                "results/validation/claims.csv", "results/tables/fig3_operational_intensity.csv",
                "results/figures/fig3_roofline.png", "results/tables/fig6_fusion.csv",
                "results/figures/fig6_fusion.svg", "results/tables/fig2_breakdown.csv",
                "results/tables/fig7_latency_vs_experts.csv", "results/tables/table2_coe_speedups.csv",
                "results/figures/fig7_latency_vs_experts.png", "results/figures/coe_sensitivity.png",
                "results/validation/gpu_calibration.csv", "results/calibration/gpu_constants.yaml",
                "results/tables/serving_load.csv", "results/figures/serving_policies.png",
                "results/figures/serving_cost.svg", "results/tables/sweep_default.csv",
                "results/sweeps/default/shard_1.csv", "results/figures/sweep_default.png"):
        assert (small_run / rel).stat().st_size > 0, rel
    table1 = pd.read_csv(small_run / "results/tables/table1_benchmarks.csv")
    assert table1["benchmark"].tolist() == ["llama2-7b", "flashfftconv"]
    fig8 = pd.read_csv(small_run / "results/tables/fig8_footprint.csv")
    assert fig8["experts"].max() == 60
    assert (small_run / "results/logs/table1.log").exists()
    assert (small_run / "results/benchmarks/table1.tsv").exists()


def test_rerun_does_nothing(small_run):
    proc = _run(small_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_config_change_reruns_only_dependants(small_run):
    cfg_path = small_run / "config/config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["coe"]["experts_max"] = 61
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = _run(small_run, "-n", "--quiet", "rules")
    out = proc.stdout + proc.stderr
    assert "fig8_footprint_table" in out
    assert "table1" not in out.replace("table1_benchmarks", "")
    assert "fig6_table" not in out


def test_bad_config_names_field_and_allowed_values(repo_root, tmp_path):
    work = _copy_workflow(repo_root, tmp_path, tiering="magic")
    proc = _run(work, "-n")
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "coe.tiering" in err and "inclusive, exclusive" in err
    assert "Traceback" not in err


def test_report_holds_every_figure_and_table(small_run):
    proc = _run(small_run, "--report", "results/report.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (small_run / "results/report.html").read_text(errors="replace")
    for name in ("fig8_footprint.png", "table1_benchmarks.csv", "claims.csv", "fig3_roofline.png",
                 "fig6_fusion.png", "fig6_fusion.csv", "fig3_operational_intensity.csv"):
        assert name in html, name
