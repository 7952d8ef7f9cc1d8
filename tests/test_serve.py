"""Serving simulator: Little's law, analytic agreement at zero load, cache policies, OOM, determinism."""
import numpy as np
import pandas as pd
import pytest

from rdusim.core.errors import ConfigError
from rdusim.scenarios.coe import coe_latency
from rdusim.scenarios.serve import (
    poisson_requests,
    read_trace,
    simulate,
    zipf_popularity,
)


def run(platform="dgx-h100", experts=100, rate=4.0, requests=20000, skew=0.0, policy="lru", **kw):
    trace = poisson_requests(rate, requests, experts, skew, seed=kw.pop("seed", 11))
    return simulate(platform, experts, trace, policy, popularity=zipf_popularity(experts, skew), **kw)


@pytest.mark.parametrize("platform,rate", [("dgx-h100", 4.0), ("sn40l-node", 20.0)])
def test_littles_law(platform, rate):
    s, _ = run(platform, rate=rate, skew=1.0)
    assert s["mean_in_system"] == pytest.approx(s["throughput_rps"] * s["mean_s"], rel=0.02)


@pytest.mark.parametrize("platform", ["dgx-h100", "sn40l-node"])
def test_zero_load_matches_analytic_coe_latency(platform):
    # the `measured` profile keeps the most popular experts resident, as the simulator's caches do
    s, _ = run(platform, experts=100, rate=0.05, requests=20000, max_batch=1, max_wait_s=0.0, profile="measured")
    analytic = coe_latency(platform, 100, 1, 20, "measured").total_s
    assert s["mean_s"] == pytest.approx(analytic, rel=0.02)


def test_hit_rate_rises_with_skew_under_lfu():
    rates = [run(skew=z, policy="lfu", requests=10000)[0]["hbm_hit_rate"] for z in (0.0, 0.5, 1.0, 1.5)]
    assert np.all(np.diff(rates) > 0)


def test_pinned_with_room_for_all_never_misses():
    s, _ = run("dgx-h200", experts=60, policy="pinned", skew=0.7)
    assert s["slots"] >= 60 and s["copies"] == 0 and s["hbm_hit_rate"] == 1.0


def test_oom_when_experts_exceed_all_memory():
    s, df = run("dgx-h100", experts=149, requests=200)
    assert s["fits"] is False and "149" in s["reason"] and df.empty


def test_identical_seeds_identical_results():
    a = run(seed=5, requests=5000)[1]
    b = run(seed=5, requests=5000)[1]
    c = run(seed=6, requests=5000)[1]
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_numba_matches_python_reference():
    trace = poisson_requests(6.0, 400, 80, 1.0, seed=2)
    for policy in ("lru", "lfu", "pinned"):
        fast = simulate("dgx-h100", 80, trace, policy, popularity=zipf_popularity(80, 1.0))[1]
        slow = simulate("dgx-h100", 80, trace, policy, popularity=zipf_popularity(80, 1.0), use_jit=False)[1]
        pd.testing.assert_frame_equal(fast, slow)


def test_every_request_finishes_after_it_arrives():
    s, df = run(rate=10.0, skew=1.0, requests=5000)
    assert df.finish_s.notna().all() and (df.latency_s > 0).all() and (df.ttft_s <= df.latency_s).all()


def test_trace_replay_and_bad_input(tmp_path):
    path = tmp_path / "log.csv"
    pd.DataFrame({"arrival_s": [0.3, 0.1, 0.2], "expert": [1, 0, 2]}).to_csv(path, index=False)
    trace = read_trace(str(path), 3)
    assert trace.arrival_s.is_monotonic_increasing
    s, df = simulate("sn40l-node", 3, trace)
    assert s["requests"] == 3 and df.latency_s.notna().all()
    with pytest.raises(ConfigError, match="trace.*row 2: expert"):
        read_trace(str(path), 2)
    with pytest.raises(ConfigError, match="policy"):
        simulate("sn40l-node", 3, trace, "fifo")
    with pytest.raises(ConfigError, match="rate"):
        poisson_requests(0, 10, 3)


# ---- the HBM cache's accounting (issue 22): properties over random loads, policies and skews
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25)
@given(platform=st.sampled_from(["sn40l-node", "dgx-h100"]), experts=st.integers(1, 148),
       rate=st.floats(0.2, 64.0), skew=st.floats(0.0, 2.0), locality=st.floats(0.0, 0.9),
       policy=st.sampled_from(["lru", "lfu", "pinned"]), seed=st.integers(0, 10_000))
def test_hit_rate_is_a_fraction_and_copies_never_exceed_runs(platform, experts, rate, skew, locality, policy, seed):
    trace = poisson_requests(rate, 600, experts, skew, locality, seed=seed)
    s, _ = simulate(platform, experts, trace, policy, popularity=zipf_popularity(experts, skew))
    assert s["fits"]
    assert 0.0 <= s["hbm_hit_rate"] <= 1.0
    assert s["copies"] <= s["expert_batches"]
    assert s["copies_started"] == s["copies"] + s["wasted_copies"]
    assert s["wasted_copy_bytes"] >= 0


def test_overloaded_sn40l_hit_rate_and_saturation():
    # the case: 45,799 copies for 7,697 expert batches printed a hit rate of -495%
    trace = poisson_requests(32, 20000, 100, 0.0, seed=0)
    s, _ = simulate("sn40l-node", 100, trace)
    assert 0.0 <= s["hbm_hit_rate"] <= 1.0 and s["copies"] <= s["expert_batches"]
    assert s["saturated"] and s["utilisation"] > 0.99
    light, _ = run("sn40l-node", rate=2.0, requests=4000)
    assert not light["saturated"]


def test_cli_says_saturated(capsys):
    from rdusim.cli import main

    assert main(["serve", "--platform", "sn40l-node", "--experts", "100", "--rate", "32", "--requests", "20000"]) == 0
    out = capsys.readouterr().out
    assert "saturated" in out and "-" not in out.split("HBM hit rate")[1].split("%")[0]


# ---- placement (issue 22): experts over groups of devices serving at the same time
def test_one_group_is_the_article_deployment_and_groups_share_hbm():
    trace = poisson_requests(4.0, 3000, 100, 1.0, seed=4)
    pop = zipf_popularity(100, 1.0)
    whole_node = simulate("sn40l-node", 100, trace, popularity=pop)[0]
    one = simulate("sn40l-node", 100, trace, popularity=pop, groups=1)[0]
    assert whole_node == one and one["tp"] == 8
    eight = simulate("sn40l-node", 100, trace, popularity=pop, groups=8)[0]
    assert eight["tp"] == 1 and eight["slots"] < one["slots"]  # a router and KV reserve per group
    assert 0 <= eight["hbm_hit_rate"] <= 1 and eight["copies"] <= eight["expert_batches"]


def test_groups_serve_more_load_before_saturating():
    trace = poisson_requests(64.0, 20000, 100, 1.0, seed=1)
    pop = zipf_popularity(100, 1.0)
    one = simulate("sn40l-node", 100, trace, popularity=pop, per_request=False)[0]
    four = simulate("sn40l-node", 100, trace, popularity=pop, per_request=False, groups=4)[0]
    assert one["saturated"] and not four["saturated"]
    assert four["ttft_ms_p99"] < one["ttft_ms_p99"] / 5 and four["goodput_rps"] > one["goodput_rps"]


def test_groups_must_divide_the_devices():
    trace = poisson_requests(4.0, 100, 10, seed=1)
    with pytest.raises(ConfigError, match="groups"):
        simulate("dgx-h100", 10, trace, groups=3)
