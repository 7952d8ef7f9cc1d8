"""Serving simulator: Little's law, analytic agreement at zero load, cache policies, OOM, determinism."""
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from rdusim.cli import main
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


# ---- speed and scale (issue 22, item 6): streamed summaries, chunked arrivals, a ring of request slots
from rdusim.scenarios import serve as serve_mod  # noqa: E402
from rdusim.scenarios.serve import _lru_insert, _lru_unlink  # noqa: E402
from rdusim.scenarios.serve import (  # noqa: E402
    HIST_RESOLUTION,
    hist_percentiles,
    poisson_chunks,
    simulate_poisson,
)


def _hist(values):
    counts = np.zeros(serve_mod.HIST_BINS, np.int64)
    for v in values:
        counts[serve_mod._bin(v)] += 1
    return counts


def test_histogram_bin_from_bits_is_the_frexp_definition():
    rng = np.random.default_rng(4)
    powers = np.ldexp(1.0, np.arange(-40, 40))
    edges = [0.0, -1.0, np.nan, np.inf, 5e-324, 2.2250738585072014e-308, 1e300, serve_mod.MAX_TIME_S]
    values = np.concatenate([np.exp(rng.uniform(-20, 20, 20000)), np.exp(rng.uniform(-700, 700, 2000)), powers,
                             np.nextafter(powers, 0), np.nextafter(powers, np.inf), edges])
    want = [serve_mod.bin_reference(float(v)) for v in values]
    assert [serve_mod._bin(v) for v in values] == want
    assert [getattr(serve_mod._bin, "py_func", serve_mod._bin)(v) for v in values] == want
    assert want[-8:-4] == [0, 0, 0, serve_mod.HIST_BINS - 1]  # 0, negative, NaN: first bin; infinity: last
    assert 0 < min(want[:20000]) and max(want[:20000]) < serve_mod.HIST_BINS - 1


def test_histogram_percentiles_within_their_resolution_of_numpy():
    rng = np.random.default_rng(0)
    for values in (rng.lognormal(-1, 2, 20001), rng.exponential(0.07, 999), np.array([0.25]), rng.uniform(1, 2, 10)):
        exact = np.percentile(values, [0, 1, 50, 90, 95, 99, 100])
        approx = hist_percentiles(_hist(values), [0, 1, 50, 90, 95, 99, 100])
        np.testing.assert_allclose(approx, exact, rtol=HIST_RESOLUTION, atol=0)
    assert HIST_RESOLUTION <= 0.0005
    assert np.isnan(hist_percentiles(np.zeros(serve_mod.HIST_BINS, np.int64), [50])[0])


def test_summary_percentiles_within_resolution_of_the_per_request_frame():
    trace = poisson_requests(20.0, 20000, 150, 1.0, seed=3)
    s, df = simulate("sn40l-node", 150, trace, popularity=zipf_popularity(150, 1.0))
    lat = df.latency_s.to_numpy()
    for key, q in (("p50_s", 50), ("p95_s", 95), ("p99_s", 99)):
        assert s[key] == pytest.approx(np.percentile(lat, q), rel=HIST_RESOLUTION)
    ttft = df.ttft_s.to_numpy() * 1e3
    tpot = (df.finish_s - df.ttft_s - df.arrival_s).to_numpy() / 19 * 1e3
    for name, v in (("ttft", ttft), ("tpot", tpot), ("e2e", lat * 1e3)):
        assert s[f"{name}_ms_mean"] == pytest.approx(v.mean(), rel=1e-12)
        for q in (50, 90, 99):
            assert s[f"{name}_ms_p{q}"] == pytest.approx(np.percentile(v, q), rel=HIST_RESOLUTION)
    assert s["mean_s"] == pytest.approx(lat.mean(), rel=1e-12)


@pytest.mark.parametrize("locality,chunk", [(0.0, 777), (0.6, 1000), (0.9, 1)])
def test_chunked_arrivals_are_the_trace(locality, chunk):
    whole_trace = poisson_requests(7.0, 5000, 40, 1.2, locality, seed=9)
    parts = list(poisson_chunks(7.0, 5000, 40, 1.2, locality, seed=9, chunk=chunk))
    assert all(len(a) <= chunk for a, _ in parts)
    np.testing.assert_array_equal(np.concatenate([a for a, _ in parts]), whole_trace.arrival_s.to_numpy())
    np.testing.assert_array_equal(np.concatenate([e for _, e in parts]), whole_trace.expert.to_numpy())


@pytest.mark.parametrize("groups,policy,locality", [(1, "lru", 0.0), (4, "lfu", 0.5), (2, "pinned", 0.0)])
def test_streamed_run_is_the_simulation_of_its_trace(groups, policy, locality):
    trace = poisson_requests(40.0, 30000, 100, 1.0, locality, seed=5)
    pop = zipf_popularity(100, 1.0)
    whole_run = simulate("sn40l-node", 100, trace, policy, popularity=pop, groups=groups, per_request=False)[0]
    streamed = simulate_poisson("sn40l-node", 100, 40.0, 30000, 1.0, locality, 5, policy, groups=groups, chunk=4099)
    assert streamed == whole_run


def test_ring_growth_and_tiny_chunks_change_nothing(monkeypatch):
    # a saturated run: thousands of requests in the system, far more than the ring's first slots
    trace = poisson_requests(32.0, 6000, 100, 0.0, seed=0)
    ref = simulate("sn40l-node", 100, trace)
    monkeypatch.setattr(serve_mod, "RING_SLOTS", 2)
    monkeypatch.setattr(serve_mod, "FEED_REQUESTS", 37)
    small = simulate("sn40l-node", 100, trace)
    assert ref[0]["saturated"] and small[0] == ref[0]
    pd.testing.assert_frame_equal(small[1], ref[1])
    slow = simulate("sn40l-node", 100, trace.head(1500), use_jit=False)
    fast = simulate("sn40l-node", 100, trace.head(1500))
    assert slow[0] == fast[0]
    pd.testing.assert_frame_equal(slow[1], fast[1])


def test_streamed_memory_does_not_grow_with_requests():
    def peak(n):
        tracemalloc.start()
        s = simulate_poisson("dgx-h100", 100, 4.0, n, 1.0, chunk=1 << 14)
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert s["requests"] == n and s["fits"]
        return out

    simulate_poisson("dgx-h100", 100, 4.0, 1000, 1.0)  # compile / load the kernel first
    small, large = peak(20_000), peak(400_000)
    assert large < 1.2 * small + 1e6  # a table of 400,000 requests alone would take 6.4 MB more


def test_lru_list_kernels_keep_last_use_then_id_order():
    """The serving loop's LRU list (inlined numba kernels, and their Python twins): after any sequence of
    uses, walking the list from its head gives the resident experts sorted by (last use, id)."""
    rng = np.random.default_rng(5)
    for insert, unlink in ((_lru_insert, _lru_unlink), (_lru_insert.py_func, _lru_unlink.py_func)):
        n = 12
        prev, nxt, last = np.full(n, -1), np.full(n, -1), np.zeros(n)
        head = tail = -1
        listed = set()
        for step in range(300):
            e, t = int(rng.integers(n)), float(step // 3)  # three uses share each time
            if e in listed:
                head, tail = unlink(e, prev, nxt, head, tail)
            last[e] = t
            head, tail = insert(e, t, last, prev, nxt, head, tail)
            listed.add(e)
            walk, x = [], head
            while x >= 0:
                walk.append(x)
                x = nxt[x]
            assert walk == sorted(listed, key=lambda k: (last[k], k)) and tail == walk[-1]
