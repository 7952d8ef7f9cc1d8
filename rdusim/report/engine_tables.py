"""Single-model serving tables (issue 22): a replayed trace against offered load for several deployments
of one model on one node (static batches at TP8, the article era; iteration-level engines at TP1 x 8 ...),
and each deployment's capacity at p99 TTFT bounds. Extra per-row columns (energy, ...) can be added to the
summary dict of :func:`engine_row` without touching the rest."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rdusim.core.paths import DATA_DIR
from rdusim.scenarios.footprint import CoEDeployment
from rdusim.scenarios.serve import poisson_requests, simulate, zipf_popularity
from rdusim.scenarios.serve_model import simulate_model
from rdusim.scenarios.traces import read_request_trace, retime

TRACE_DIR = DATA_DIR / "traces"
KEEP = ("fits", "reason", "served", "rejected", "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99",
        "tpot_ms_mean", "tpot_ms_p50", "tpot_ms_p90", "tpot_ms_p99", "e2e_ms_mean", "e2e_ms_p50", "e2e_ms_p90",
        "e2e_ms_p99", "throughput_rps", "tokens_per_s_per_node", "tokens_per_s_per_user", "ttft_slo_ms",
        "tpot_slo_ms", "slo_attainment", "goodput_rps", "saturated", "mean_batch", "kv_cache_tokens")


def engine_trace(name: str, requests: int = 0) -> pd.DataFrame:
    """A packaged trace (``rdusim/data/traces/<name>.csv.gz``; see the README there), its first
    ``requests`` rows (0: all)."""
    trace = read_request_trace(str(TRACE_DIR / f"{name}.csv.gz"))
    return trace.iloc[:requests].reset_index(drop=True) if requests else trace


def engine_row(e: dict, deployment: str, spec: dict, trace: pd.DataFrame, rate: float) -> dict:
    """One deployment at one offered rate: the trace re-timed to ``rate`` and served; the summary's metrics."""
    summary, _ = simulate_model(e["platform"], e["model"], int(spec["tp"]), retime(trace, rate), spec["batching"],
                                instances=int(spec["instances"]), ttft_slo_s=float(e["ttft_slo_s"]),
                                tpot_slo_s=float(e["tpot_slo_s"]), max_batch=int(spec.get("max_batch", 8)),
                                max_wait_s=float(spec.get("max_wait_s", 0.05)), stack=spec.get("stack"))
    return {"platform": e["platform"], "model": e["model"], "trace": e["trace"], "deployment": deployment,
            "stack": summary.get("stack"), "tp": spec["tp"], "instances": spec["instances"],
            "batching": spec["batching"], "offered_rps": rate,
            **{k: summary.get(k, np.nan) for k in KEEP}}


def serving_engines(config: dict) -> pd.DataFrame:
    """Every deployment of ``serving.engine`` at every offered rate (the trace re-timed to each)."""
    e = config["serving"]["engine"]
    trace = engine_trace(e["trace"], int(e.get("requests", 0)))
    return pd.DataFrame([engine_row(e, name, spec, trace, float(rate))
                         for name, spec in e["deployments"].items() for rate in e["rates"]])


def capacity_at(e: dict, deployment: str, spec: dict, trace: pd.DataFrame, bound_ms: float, steps: int = 12) -> float:
    """The highest offered rate (requests/s, within the ``rates`` range of ``e``) whose p99 TTFT stays within
    ``bound_ms``, by bisection on a log scale (p99 TTFT rises with load); NaN when even the lowest rate fails."""
    lo, hi = math.log(min(e["rates"])), math.log(max(e["rates"]))
    meets = lambda x: (lambda r: bool(r["fits"]) and r["ttft_ms_p99"] <= bound_ms)(  # noqa: E731
        engine_row(e, deployment, spec, trace, math.exp(x)))
    if not meets(lo):
        return float("nan")
    if meets(hi):
        return math.exp(hi)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return math.exp(lo)


def serving_capacity(config: dict) -> pd.DataFrame:
    """Each deployment's capacity at each p99 TTFT bound, and its ratio to the first (baseline) deployment."""
    e = config["serving"]["engine"]
    trace = engine_trace(e["trace"], int(e.get("requests", 0)))
    rows = []
    for bound in e["ttft_p99_bounds_s"]:
        base = None
        for name, spec in e["deployments"].items():
            cap = capacity_at(e, name, spec, trace, float(bound) * 1e3)
            base = cap if base is None else base
            rows.append({"platform": e["platform"], "model": e["model"], "trace": e["trace"], "deployment": name,
                         "stack": spec.get("stack") or "platform default", "tp": spec["tp"],
                         "instances": spec["instances"], "batching": spec["batching"],
                         "ttft_p99_bound_s": bound, "capacity_rps": cap,
                         "vs_baseline": cap / base if base and base > 0 else np.nan,
                         "baseline": next(iter(e["deployments"])), "basis": "predicted"})
    return pd.DataFrame(rows)


PLACEMENT_KEEP = ("fits", "reason", "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99", "tpot_ms_mean",
                  "tpot_ms_p99", "e2e_ms_p99", "throughput_rps", "goodput_rps", "slo_attainment", "hbm_hit_rate",
                  "utilisation", "saturated", "slots", "copies", "expert_batches", "ttft_slo_ms", "tpot_slo_ms")


def serving_placement(config: dict) -> pd.DataFrame:
    """CoE placement study: every expert over all devices one batch at a time (groups 1, the article's TP8)
    against experts spread over groups of devices serving at the same time (8 x TP1, 4 x TP2, ...), on each
    platform of ``serving.placement``, against offered load (Poisson, Zipf routing)."""
    s = config["serving"]
    pl = s["placement"]
    dep = CoEDeployment.from_config(config.get("coe"))
    experts, skew = int(pl["experts"]), float(pl["zipf"])
    rows = []
    for platform in pl["platforms"]:
        for groups in pl["groups"]:
            for rate in pl["rates"]:
                trace = poisson_requests(float(rate), int(pl["requests"]), experts, skew, seed=int(s["seed"]))
                summary, _ = simulate(platform, experts, trace, s["policy"], int(s["max_batch"]), float(s["max_wait_s"]),
                                      prompt=dep.prompt_tokens, gen=int(s["gen"]),
                                      popularity=zipf_popularity(experts, skew), dep=dep, per_request=False,
                                      groups=int(groups), ttft_slo_s=float(pl["ttft_slo_s"]),
                                      tpot_slo_s=float(pl["tpot_slo_s"]))
                rows.append({"platform": platform, "experts": experts, "zipf": skew, "groups": int(groups),
                             "tp": summary.get("tp", np.nan), "offered_rps": float(rate),
                             **{k: summary.get(k, np.nan) for k in PLACEMENT_KEEP}})
    return pd.DataFrame(rows)
