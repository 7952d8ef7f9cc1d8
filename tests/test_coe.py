"""The Samba-CoE model: monotonicity, OOM boundary, consistency with rdusim predict, sampling."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from baselines.published import NEMO_FILE

from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.core.stacks import load_stack
from rdusim.report.coe_tables import sensitivity, sensitivity_default, table2_coe_speedups, table2_experts
from rdusim.scenarios.coe import (
    coe_latency,
    expert_source,
    expert_times_ms,
    load_profile,
    copy_probability,
    request_work_s,
    sample_latency,
    switch_bandwidth,
)
from rdusim.scenarios.footprint import CoEDeployment, experts_in_hbm, max_experts
from rdusim.scenarios.predict import predict_one

DEP = CoEDeployment.from_config()
PLATFORMS = ["sn40l-node", "dgx-a100", "dgx-h100", "dgx-h200"]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("batch", [1, 8])
def test_latency_never_decreases_with_experts(platform, batch):
    limit = max_experts(load_platform(platform), DEP)
    counts = sorted(set(list(range(1, 120)) + [limit - 1, limit]))
    totals = [coe_latency(platform, n, batch, 20).total_s for n in counts if n <= limit]
    assert np.all(np.diff(totals) >= -1e-12)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_oom_exactly_where_capacity_runs_out(platform):
    limit = max_experts(load_platform(platform), DEP)
    assert coe_latency(platform, limit, 8, 20).fits
    over = coe_latency(platform, limit + 1, 8, 20)
    assert not over.fits and "experts" in over.reason and np.isnan(over.total_s)


def test_no_switching_while_experts_fit_in_hbm():
    h = experts_in_hbm(load_platform("dgx-h100"), DEP)
    assert coe_latency("dgx-h100", h, 8, 20).switching_s == 0
    assert coe_latency("dgx-h100", h + 1, 8, 20).switching_s > 0


@pytest.mark.parametrize("platform,profile", [("dgx-h100", "model"), ("sn40l-node", "model"), ("dgx-a100", "measured"),
                                              ("sn40l-node", "paper")])
def test_single_expert_time_is_rdusim_predict(platform, profile):
    """Without published numbers an expert's time is `rdusim predict`'s in the profile's stack; the router's
    is its time to first token, less the stack's per-request work on an SN40L under paper (issue 20)."""
    r = coe_latency(platform, 1, 4, 20, profile)
    p = load_platform(platform)
    prof = load_profile(profile)
    mode, stack = prof.execution(p), prof.stack(p)
    pred = predict_one(platform, DEP.expert_model, 4, 8, DEP.prompt_tokens, 20, mode, stack=stack)
    assert r.execution_s * 1e3 == pytest.approx(pred["total_ms"], rel=1e-12)
    router = predict_one(platform, DEP.router_model, 4, 8, DEP.prompt_tokens, 1, mode, stack=stack)
    spared = request_work_s(p, prof) if (p.kind == "rdu" and not prof.rdu_router_request) else 0.0
    assert r.router_s * 1e3 == pytest.approx(router["ttft_ms"] - spared * 1e3, rel=1e-12)


@pytest.mark.parametrize("platform,column", [("dgx-a100", "a100_latency_ms"), ("dgx-h100", "h100_latency_ms")])
def test_paper_profile_takes_the_published_gpu_latency(platform, column):
    """The article's method: a DGX expert call costs NeMo's published latency where the table has it."""
    table = pd.read_csv(NEMO_FILE, comment="#")
    for batch in (1, 2, 4, 8):
        row = table[(table.tp == 8) & (table.batch == batch)].iloc[0]
        assert coe_latency(platform, 1, batch, 20, "paper").execution_s * 1e3 == pytest.approx(row[column], rel=1e-12)
        assert expert_source(platform, DEP, load_profile("paper"), 20, batch) == "published"
    assert expert_source(platform, DEP, load_profile("paper"), 200, 1) == "model"  # the table has no 200-token rows


def test_paper_profile_adds_the_sambaflow_2023_runtime():
    """paper = model + sambaflow-2023's work: a request and G + 1 passes per expert call; the router's
    call pays its pass only; a batch that copies experts pays one request for the copy."""
    st = load_stack("sambaflow-2023")
    assert st.request > 0 and st.step > 0
    for gen in (20, 200):
        paper = coe_latency("sn40l-node", 1, 1, gen, "paper")
        model = coe_latency("sn40l-node", 1, 1, gen, "model")
        assert paper.execution_s - model.execution_s == pytest.approx(st.request + (gen + 1) * st.step, rel=1e-9)
        assert paper.router_s - model.router_s == pytest.approx(st.step, rel=1e-9)
        assert paper.switching_s == model.switching_s == 0
    h = experts_in_hbm(load_platform("sn40l-node"), DEP)
    for batch in (1, 8):
        paper = coe_latency("sn40l-node", h + 1, batch, 20, "paper")
        model = coe_latency("sn40l-node", h + 1, batch, 20, "model")
        copies = paper.expected_misses * DEP.expert_bytes / switch_bandwidth(
            load_platform("sn40l-node"), load_profile("paper"), 8)
        assert paper.switching_s == pytest.approx(copies + st.request, rel=1e-9)  # once per batch
        assert model.switching_s == pytest.approx(copies * model.expected_misses / paper.expected_misses, rel=1e-9)
        assert paper.total_s == pytest.approx(sample_latency("sn40l-node", h + 1, batch, 20, "paper", samples=4000,
                                                             seed=3), rel=0.02)


def test_copy_probability_keeps_popular_experts():
    prof = load_profile("model")  # keep_most_popular
    p = np.full(10, 0.1)
    assert copy_probability(p, 4, 10, prof) == 0
    assert copy_probability(p, 1, 6, prof) == pytest.approx(0.4)
    assert copy_probability(p, 3, 6, prof) == pytest.approx(1 - 0.6 ** 3)
    assert copy_probability(p, 1, 6, load_profile("paper")) == 1.0


def test_profiles_name_stacks_that_run_there():
    assert load_profile("paper").rdu_stack == "sambaflow-2023" and load_profile("paper").gpu_stack == "nemo-2023"
    assert load_profile("model").rdu_stack == "kernels"


def test_copy_every_use_copies_each_used_expert_once_experts_spill():
    h = experts_in_hbm(load_platform("dgx-h100"), DEP)
    fits = coe_latency("dgx-h100", h, 8, 20, "paper")
    spilled = coe_latency("dgx-h100", h + 1, 8, 20, "paper")
    pinned = coe_latency("dgx-h100", h + 1, 8, 20, "model")
    assert fits.switching_s == 0
    assert spilled.expected_misses == pytest.approx(spilled.expected_distinct_experts, rel=1e-12)  # the spike
    assert pinned.expected_misses < 0.1 * spilled.expected_misses
    assert sample_latency("dgx-h100", h + 1, 8, 20, "paper", samples=20000, seed=5) == pytest.approx(
        spilled.total_s, rel=0.01)


def test_expectation_matches_seeded_sampling_within_1pct():
    exact = coe_latency("dgx-h100", 100, 8, 20).total_s
    mc = sample_latency("dgx-h100", 100, 8, 20, samples=20000, seed=7)
    assert mc == pytest.approx(exact, rel=0.01)
    assert sample_latency("dgx-h100", 100, 8, 20, samples=2000, seed=3) == sample_latency(
        "dgx-h100", 100, 8, 20, samples=2000, seed=3)


def test_skewed_routing_keeps_popular_experts_resident():
    n = 120
    zipf = 1.0 / np.arange(1, n + 1) ** 1.2
    skewed = coe_latency("dgx-h100", n, 8, 20, popularity=zipf)
    uniform = coe_latency("dgx-h100", n, 8, 20)
    assert skewed.expected_misses < uniform.expected_misses
    with pytest.raises(ConfigError, match="popularity"):
        coe_latency("dgx-h100", n, 8, 20, popularity=[1.0, 2.0])


def test_switch_bandwidths_follow_the_profiles():
    node, dgx = load_platform("sn40l-node"), load_platform("dgx-h100")
    assert switch_bandwidth(node, load_profile("paper"), 8) == pytest.approx(1.0e12)
    assert switch_bandwidth(dgx, load_profile("paper"), 8) == pytest.approx(64e9)
    assert switch_bandwidth(dgx, load_profile("measured"), 8) == pytest.approx(8 * 55.11e9)
    assert switch_bandwidth(dgx, load_profile("measured-pageable"), 8) == pytest.approx(8 * 7.61e9)


def test_table2_switching_and_oom_cells_reproduce_the_article(repo_root):
    cfg = yaml.safe_load((repo_root / "config/config.yaml").read_text())
    t = table2_coe_speedups(cfg, "paper").set_index(["metric", "baseline"])
    assert t.loc[("model_switching", "dgx-a100"), "reproduced"] == pytest.approx(31, rel=0.10)
    assert t.loc[("model_switching", "dgx-h100"), "reproduced"] == pytest.approx(15, rel=0.10)
    assert t.loc[("oom_150_experts", "dgx-h100"), "reproduced"] == "DGX OOM"
    assert table2_experts(cfg) == 148


def test_expert_times_are_cached_and_monotone_in_batch():
    t = expert_times_ms("dgx-h100", "llama2-7b", 8, 128, 20, "fused", 8)
    assert t[0] == 0 and np.all(np.diff(t[1:]) >= 0)


def test_cli_coe_json_and_errors():
    proc = subprocess.run([sys.executable, "-m", "rdusim.cli", "coe", "--platform", "sn40l-node", "--experts", "150",
                           "--batch", "8", "--gen", "20", "--profile", "paper", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["fits"] and out["total_ms"] == pytest.approx(out["router_ms"] + out["switching_ms"] + out["execution_ms"])
    bad = subprocess.run([sys.executable, "-m", "rdusim.cli", "coe", "--platform", "sn40l-node", "--experts", "10",
                          "--profile", "optimistic"], capture_output=True, text=True)
    assert bad.returncode == 2 and "paper, model, measured" in bad.stderr and "Traceback" not in bad.stderr


def test_gh200_node_in_the_sensitivity_changes_the_switching_arithmetic():
    """Issue 19: eight GH200s (96 GB HBM3 + 480 GB LPDDR5X each, NVLink-C2C) host 284 Llama-2-7B experts (DGX
    H100: 148) and keep 54 in HBM (45); at its own link the SN40L's lead over it is smaller than over the DGX,
    and where all 50 experts are resident no host link matters."""
    dep = CoEDeployment.from_config()
    gh, dgx = load_platform("gh200-x8"), load_platform("dgx-h100")
    assert (max_experts(gh, dep), experts_in_hbm(gh, dep)) == (284, 54)
    assert (max_experts(dgx, dep), experts_in_hbm(dgx, dep)) == (148, 45)
    cfg = yaml.safe_load(open("config/config.yaml"))
    t = sensitivity(cfg)
    assert set(t.gpu) == {"dgx-h100", "gh200-x8"} and set(t[t.gpu == "dgx-h100"].experts) == {50, 100, 148}
    assert 250 in set(t[t.gpu == "gh200-x8"].experts)
    default = sensitivity_default(cfg)
    assert default["gh200-x8"]["host_link_GBps"] == 450 and default["dgx-h100"]["host_link_GBps"] == 64

    def at(gpu, link):
        d = default[gpu]
        row = t[(t.gpu == gpu) & (t.experts == d["experts"]) & (t.host_link_GBps == link)
                & (t.ddr_to_hbm_node_GBps == d["ddr_to_hbm_node_GBps"])]
        return float(row.speedup_vs_gpu.iloc[0])
    assert at("gh200-x8", 450) < at("dgx-h100", 64) / 2
    resident = t[(t.gpu == "gh200-x8") & (t.experts == 50)]
    assert resident.groupby("ddr_to_hbm_node_GBps").speedup_vs_gpu.nunique().eq(1).all()
