"""Serving and sweep result tables (beyond the article): load curves, cache policies, cost, sweeps."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rdusim.core.platforms import load_platform
from rdusim.scenarios.coe_energy import serve_energy
from rdusim.scenarios.footprint import CoEDeployment, max_experts
from rdusim.scenarios.serve import poisson_requests, simulate, zipf_popularity


def _run(cfg: dict, platform: str, experts: int, rate: float, skew: float, policy: str, requests: int | None = None):
    s = cfg["serving"]
    dep = CoEDeployment.from_config(cfg.get("coe"))  # the deployment the config describes (tiering, reserves, TP, ...)
    trace = poisson_requests(rate, int(requests or s["requests"]), experts, skew, seed=int(s["seed"]))
    summary, _ = simulate(platform, experts, trace, policy, int(s["max_batch"]), float(s["max_wait_s"]),
                          prompt=dep.prompt_tokens, gen=int(s["gen"]), popularity=zipf_popularity(experts, skew),
                          dep=dep)
    return summary


def _energy(config: dict, summary: dict, nodes: int = 1) -> dict:
    """Energy and cost columns of a served load (:func:`rdusim.scenarios.coe_energy.serve_energy`)."""
    s = config["serving"]
    return serve_energy(summary, int(s["gen"]), dep=CoEDeployment.from_config(config.get("coe")),
                        max_batch=int(s["max_batch"]), nodes=nodes)


def serving_load(config: dict) -> pd.DataFrame:
    """p99 latency and friends vs offered load, per platform, expert count and skew, with the node's
    average power, joules per token and cost per million tokens."""
    s = config["serving"]
    rows = []
    for platform in s["platforms"]:
        for experts in s["experts"]:
            for skew in s["skews"]:
                for rate in s["rates"]:
                    summary = _run(config, platform, int(experts), float(rate), float(skew), s["policy"])
                    rows.append({"platform": platform, "experts": experts, "zipf": skew, "offered_rps": rate,
                                 **{k: v for k, v in summary.items() if k not in ("platform", "experts")},
                                 **_energy(config, {"platform": platform, **summary})})
    return pd.DataFrame(rows)


def serving_policies(config: dict) -> pd.DataFrame:
    """HBM hit rate and p99 vs routing skew for each cache policy."""
    p = config["serving"]["policy_study"]
    rows = []
    for platform in p["platforms"]:
        for policy in ("lru", "lfu", "pinned"):
            for skew in p["skews"]:
                summary = _run(config, platform, int(p["experts"]), float(p["rate"]), float(skew), policy)
                rows.append({"platform": platform, "experts": p["experts"], "offered_rps": p["rate"], "zipf": skew,
                             **{k: v for k, v in summary.items() if k not in ("platform", "experts")},
                             **_energy(config, {"platform": platform, **summary})})
    return pd.DataFrame(rows)


def serving_cost(config: dict) -> pd.DataFrame:
    """Nodes needed to serve a target load at a p99 bound, vs the number of experts.

    With k nodes the experts are split evenly and each node takes 1/k of the load; k is the smallest
    count (from the capacity minimum up) whose node meets the bound, in simulation. Energy and cost
    columns: the k nodes together (each busy at its simulated utilisation, idle otherwise).
    """

    s = config["serving"]
    c = s["cost"]
    dep = CoEDeployment.from_config(config.get("coe"))
    rows = []
    for platform in s["platforms"]:
        limit = max_experts(load_platform(platform), dep)
        for experts in c["experts"]:
            k = max(1, math.ceil(int(experts) / limit))
            found, found_summary = None, {"platform": platform, "fits": False}
            while k <= int(c["max_nodes"]):
                per_node = math.ceil(int(experts) / k)
                summary = _run(config, platform, per_node, float(c["target_rps"]) / k, float(c["zipf"]), s["policy"],
                               int(c["requests"]))
                if summary["fits"] and summary["p99_s"] <= float(c["p99_bound_s"]):
                    found, found_summary = k, {"platform": platform, **summary}
                    break
                k += 1
            rows.append({"platform": platform, "experts": experts, "target_rps": c["target_rps"],
                         "p99_bound_s": c["p99_bound_s"], "nodes": found if found else np.nan,
                         "capacity_nodes": max(1, math.ceil(int(experts) / limit)),
                         **_energy(config, found_summary, found or 1)})
    return pd.DataFrame(rows)
