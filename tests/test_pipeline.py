"""End-to-end: the Snakemake pipeline on a small config in a temporary directory."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from report_browser import check_report

from rdusim.report.stamp import config_hash, read_stamp

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
    cfg["serving"]["placement"].update(platforms=["sn40l-node", "dgx-h100"], groups=[1, 8], rates=[2, 32], requests=2000)
    cfg["serving"]["engine"].update(requests=2000, rates=[0.5, 16, 64], ttft_p99_bounds_s=[5.0])
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
                "results/sweeps/default/shard_1.csv", "results/figures/sweep_default.png",
                "results/figures/table2_coe_speedups.png", "results/report/summary.html",
                "results/report/claims.html", "results/report/fig7_latency_vs_experts.html",
                "results/tables/serving_engines.csv", "results/tables/serving_capacity.csv",
                "results/tables/serving_placement.csv", "results/figures/serving_engines.png",
                "results/figures/serving_placement.svg", "results/report/serving_capacity.html",
                "results/validation/online_serving_summary.csv", "results/figures/online_serving.png",
                "results/report/online_serving.html", "results/validation/max_throughput_summary.csv",
                "results/figures/max_throughput.png", "results/report/max_throughput.html"):
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


def _rules_to_rerun(work: Path, section: str, key: str, value) -> str:
    """The rules a dry run would rerun after setting config[section][key] (the config is restored)."""
    cfg_path = work / "config/config.yaml"
    original = cfg_path.read_text()
    cfg = yaml.safe_load(original)
    cfg[section][key] = value
    cfg_path.write_text(yaml.safe_dump(cfg))
    try:
        proc = _run(work, "-n", "--quiet", "rules")
    finally:
        cfg_path.write_text(original)
    return proc.stdout + proc.stderr


def test_config_change_reruns_only_dependants(small_run):
    out = _rules_to_rerun(small_run, "coe", "experts_max", 61)
    assert "fig8_footprint_table" in out
    assert "table1" not in out.replace("table1_benchmarks", "")
    assert "fig6_table" not in out
    # batch sizes are read by the CoE tables only: Fig. 8 and the serving tables stay
    out = _rules_to_rerun(small_run, "coe", "batch_sizes", [1, 4])
    assert "coe_tables" in out
    for rule in ("fig8_footprint_table", "serving_tables", "footprint_claims", "fig6_table"):
        assert rule not in out, rule
    # a deployment key is read by everything that places experts, the serving cost included
    out = _rules_to_rerun(small_run, "coe", "hbm_reserve_fraction", 0.05)
    for rule in ("fig8_footprint_table", "serving_tables", "footprint_claims", "coe_tables"):
        assert rule in out, rule


def test_jobs_list_one_code_version_not_every_library_file(small_run):
    proc = _run(small_run, "-n", "--forcerun", "table1")
    out = proc.stdout + proc.stderr
    assert "table1" in out
    for path in ("rdusim/core", "rdusim/scenarios", "benchmarks/models.py", "baselines/gpu.py"):
        assert path not in out, path


def test_bad_config_names_field_and_allowed_values(repo_root, tmp_path):
    work = _copy_workflow(repo_root, tmp_path, tiering="magic")
    proc = _run(work, "-n")
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    assert "coe.tiering" in err and "inclusive, exclusive" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def report_html(small_run) -> Path:
    proc = _run(small_run, "--report", "results/report.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return small_run / "results/report.html"


def test_report_holds_every_figure_and_table(report_html):
    html = report_html.read_text(errors="replace")
    for name in ("fig8_footprint.png", "table1_benchmarks.html", "claims.html", "fig3_roofline.png",
                 "fig6_fusion.png", "fig6_fusion.html", "fig3_operational_intensity.html", "summary.html",
                 "table2_coe_speedups.png", "table2_coe_speedups.html", "sweep_default.html"):
        assert name in html, name


def test_front_page_matches_claims(small_run):
    claims = pd.read_csv(small_run / "results/validation/claims.csv")
    page = (small_run / "results/report/summary.html").read_text()
    for status, key in (("pass", "pass"), ("fail", "fail"), ("not modelled", "not-modelled")):
        assert f'id="n-{key}">{(claims.status == status).sum()}<' in page, status
    assert f'id="n-total">{len(claims)}<' in page
    assert page.count("<li>") == (claims.status == "fail").sum()
    failing = claims[claims.status == "fail"]
    assert failing.why.fillna("").str.len().gt(20).all(), failing.id.tolist()  # every failing claim says why


def test_rerun_writes_identical_svg_and_says_report_is_stale(report_html):
    work = report_html.parent.parent
    svg = work / "results/figures/fig8_footprint.svg"
    before = svg.read_bytes()
    proc = _run(work, "--cores", "1", "--forcerun", "fig8_footprint_figure")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert svg.read_bytes() == before
    assert "rebuild it with" in proc.stdout + proc.stderr


def test_figures_have_no_overlapping_or_tiny_labels(small_run):
    """Every figure rule's log is free of the label check's complaints (rdusim.report.figstyle)."""
    logs = sorted((small_run / "results/logs").rglob("*.log"))
    complaints = [line for log in logs for line in log.read_text().splitlines()
                  if "labels overlap" in line or "label too small" in line]
    assert not complaints, complaints


def test_report_opens_on_front_page_and_carries_its_build(report_html, small_run):
    stamp = read_stamp(report_html)
    cfg = yaml.safe_load((small_run / "config/config.yaml").read_text())
    assert stamp is not None and stamp["config"] == config_hash(cfg) and stamp["version"]
    assert stamp == read_stamp(small_run / "results/report/summary.html")
    html = report_html.read_text(errors="replace")
    assert html.count('id="rdusim-open-front-page"') == 1
    front = (small_run / "results/report/summary.html").read_text()
    assert f"config hash <code>{stamp['config']}</code>" in front and "Built from commit" in front


def test_nothing_to_be_done_still_says_report_is_stale(report_html):
    work = report_html.parent.parent
    assert _run(work, "--report", "results/report.html").returncode == 0  # current again after earlier tests
    fresh = _run(work, "--cores", "1")
    assert "Nothing to be done" in fresh.stdout + fresh.stderr
    assert "rdusim:" not in fresh.stderr  # the report is current: no warning
    newer = work / "results/figures/fig8_footprint.png"
    newer.touch()
    proc = _run(work, "--cores", "1")
    out = proc.stdout + proc.stderr
    assert "Nothing to be done" in out and "is older than the results it shows" in out
    quiet = subprocess.run(SNAKEMAKE + ["--cores", "1"], cwd=work, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "RDUSIM_REPORT_FOLLOWS": "1"})
    assert "older than the results" not in quiet.stderr  # make reproduce builds it next


def test_report_after_a_config_change_says_its_results_are_stale(report_html, tmp_path):
    work = report_html.parent.parent
    cfg_path = work / "config/config.yaml"
    original = cfg_path.read_text()
    cfg = yaml.safe_load(original)
    cfg["serving"]["seed"] = 2
    cfg_path.write_text(yaml.safe_dump(cfg))
    try:
        proc = _run(work, "--report", str(tmp_path / "stale.html"))
    finally:
        cfg_path.write_text(original)
    assert "shows stale results" in proc.stderr and "config" in proc.stderr
    assert read_stamp(tmp_path / "stale.html") == read_stamp(work / "results/report/summary.html")


def test_report_shows_every_table_and_figure_in_a_browser(report_html, tmp_path):
    """Open the report in headless Chromium and look at every result (skipped without a browser)."""
    missing = check_report(report_html)
    assert not missing, missing
