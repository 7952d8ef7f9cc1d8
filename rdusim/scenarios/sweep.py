"""Design-space sweeps of the CoE comparison: hardware and workload parameters, in shards.

A sweep (``config/config.yaml``, section ``sweeps``) lists values for SN40L hardware (HBM capacity and
bandwidth, DDR capacity, DDR-to-HBM copy rate, all per socket), the DGX H100's host-link rate, and
the workload (experts, batch, output tokens, Zipf skew of routing). Every combination is a point;
:func:`points` enumerates them in a fixed order and :func:`run_shard` evaluates shard ``i`` of ``n``
(the points ``i, i + n, i + 2n, ...``), so Snakemake can run shards as separate jobs, locally or on a
cluster, and gather them into one table.

Each point is the expected latency of a CoE batch (as :mod:`rdusim.scenarios.coe`, paper profile) on the
modified SN40L node and on the DGX H100 with the given host link, and the speedup. Execution times
of the expert on the modified SN40L come from the SN40L model (planned once per HBM bandwidth and
output length, cached); routing expectations are cached per (experts, skew, batch).
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd
from tqdm import tqdm

from rdusim.core.errors import ConfigError
from rdusim.core.platforms import Platform, load_platform
from rdusim.core.stacks import load_stack
from rdusim.scenarios.coe import (
    binomial_pmf,
    expert_latency_s,
    load_profile,
    router_latency_s,
    copy_request_s,
    router_request_s,
)
from rdusim.scenarios.footprint import CoEDeployment, experts_in_hbm, experts_in_slow_tier, max_experts
from rdusim.scenarios.closed_form import stack_work
from rdusim.scenarios.predict import rdu_passes
from rdusim.sn40l.chip import RduChip

PROFILE = "paper"  # the CoE assumption profile of every sweep point (rdusim/data/coe_profiles.yaml)
AXES = ("hbm_capacity_GB", "hbm_bandwidth_GBps", "ddr_capacity_TB", "ddr_to_hbm_GBps", "host_link_GBps",
        "experts", "batch", "gen", "zipf")


def default_point() -> dict:
    """The sweep axes' values of the shipped platforms: SN40L socket HBM, DDR and DDR-to-HBM (sn40l-node),
    the DGX H100's host link; with the article's batch 8 and 20 output tokens."""
    rdu, gpu = load_platform("sn40l-node"), load_platform("dgx-h100")
    return {"hbm_capacity_GB": rdu.dev("hbm_capacity") / 1e9, "hbm_bandwidth_GBps": rdu.dev("hbm_bandwidth") / 1e9,
            "ddr_capacity_TB": rdu.dev("ddr_capacity") / 1e12, "ddr_to_hbm_GBps": rdu.dev("ddr_to_hbm") / 1e9,
            "host_link_GBps": gpu.dev("host_link") / 1e9, "batch": 8, "gen": 20}


def points(spec: dict) -> pd.DataFrame:
    """Every combination of the sweep's axis values (columns in :data:`AXES` order)."""
    missing = [a for a in AXES if a not in spec]
    if missing:
        raise ConfigError("sweep axes", missing, "values for every axis: " + ", ".join(AXES))
    grid = itertools.product(*(list(spec[a]) for a in AXES))
    return pd.DataFrame(list(grid), columns=list(AXES))


def size(spec: dict) -> int:
    """Number of points of a sweep."""
    return int(np.prod([len(spec[a]) for a in AXES]))


@lru_cache(maxsize=None)
def _routing(experts: int, skew: float, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expected experts with b prompts for b = 0..B, expected misses when the top s are resident, s = 0..N,
    probability that a batch picks an expert beyond the top s, s = 0..N)."""
    w = 1.0 / np.arange(1, experts + 1) ** skew
    p = w / w.sum()
    pmf = binomial_pmf(batch, p)
    used = 1.0 - pmf[:, 0]
    misses = np.concatenate([np.cumsum(used[::-1])[::-1], [0.0]])
    beyond = np.clip(np.concatenate([np.cumsum(p[::-1])[::-1], [0.0]]), 0.0, 1.0)
    return pmf.sum(axis=0), misses, 1.0 - (1.0 - beyond) ** batch


@lru_cache(maxsize=None)
def _rdu_times(hbm_bandwidth: float, gen: int, max_batch: int, prompt: int, model: str, router: str,
               tp: int = 8) -> tuple:
    """Expert and router times (s) on an SN40L node with the given per-socket HBM bandwidth, batch 0..B
    (``rdusim predict``'s prompt pass and decode steps on the modified chip)."""

    chip = RduChip.from_platform("sn40l-node", tp).with_(hbm_bandwidth=hbm_bandwidth)
    node, prof = load_platform("sn40l-node"), load_profile(PROFILE)
    stack = load_stack(prof.rdu_stack)
    b = np.arange(1, max_batch + 1)
    length = np.full(max_batch, prompt)
    prefill = rdu_passes(chip, model, "prefill", b, length, tp, "fused-ho")[2]
    decode = rdu_passes(chip, model, "decode", b, length + gen // 2, tp, "fused-ho")[2]
    routing = rdu_passes(chip, router, "prefill", b, length, tp, "fused-ho")[2]
    # the profile's stack as rdusim predict adds it: a request's work, then its work per pass
    expert_pass, expert_request = stack_work(stack, model, b.astype(float), length.astype(float), tp)
    router_pass, _ = stack_work(stack, router, b.astype(float), length.astype(float), tp)
    return (np.concatenate([[0.0], prefill + gen * decode + expert_request + (gen + 1) * expert_pass]),
            np.concatenate([[0.0], routing + router_pass + router_request_s(node, prof)]))


@lru_cache(maxsize=None)
def _gpu_times(gen: int, max_batch: int, dep: CoEDeployment | None = None) -> tuple:
    """Expert and router times (s) on the DGX H100, batch 0..B; inf where a batch does not fit."""
    dep = dep or CoEDeployment.from_config()
    prof = load_profile(PROFILE)
    ex = expert_latency_s("dgx-h100", dep, prof, gen, max_batch)
    rt = np.array([0.0] + [router_latency_s("dgx-h100", dep, prof, b) for b in range(1, max_batch + 1)])
    return ex, rt


def _copy_batches(any_beyond: np.ndarray, slots: int, experts: int) -> float:
    """Probability that a batch copies any expert (``any_beyond[k]``: that it picks one beyond the top k),
    under the sweep profile's rule for experts that spill out of HBM."""
    if experts <= slots:
        return 0.0
    return 1.0 if load_profile(PROFILE).spilled == "copy_every_use" else float(any_beyond[slots])


def _copies(misses: np.ndarray, slots: int, experts: int) -> float:
    """Expected experts a batch copies (``misses[k]``: expected use of experts k and beyond, most
    popular first), under the sweep profile's rule for experts that spill out of HBM."""
    if experts <= slots:
        return 0.0
    return float(misses[0] if load_profile(PROFILE).spilled == "copy_every_use" else misses[slots])


def _sn40l_variant(hbm_capacity_GB: float, ddr_capacity_TB: float) -> Platform:
    """The SN40L node with this point's per-socket HBM and DDR capacities (for the footprint rules)."""
    base = load_platform("sn40l-node")
    device = dict(base.device, hbm_capacity=hbm_capacity_GB * 1e9, ddr_capacity=ddr_capacity_TB * 1e12)
    return replace(base, device=device)


def evaluate_points(frame: pd.DataFrame, progress: bool = False, dep: CoEDeployment | None = None) -> pd.DataFrame:
    """SN40L node and DGX H100 expected CoE latency and speedup at each sweep point, for the deployment
    ``dep`` (default: ``coe_defaults.yaml``; the pipeline passes its ``coe`` section). A point where a
    platform cannot host the experts, or a batch does not fit, is NaN (``*_fits`` false)."""

    dep = dep or CoEDeployment.from_config()
    prompt = dep.prompt_tokens
    gpu = load_platform("dgx-h100")
    gpu_slots, gpu_max = experts_in_hbm(gpu, dep), max_experts(gpu, dep)
    rdu_tp = min(dep.tensor_parallel, load_platform("sn40l-node").devices)
    eb = dep.expert_bytes
    rdu_copy_request = copy_request_s(load_platform("sn40l-node"), load_profile(PROFILE))
    out = np.full((len(frame), 5), np.nan)
    # The first point plans the expert on the chip (and, without numba's cache, compiles): the bar's
    # clock starts after it, so its rate and time left are those of the other points.
    bar = tqdm(total=len(frame), file=sys.stderr, mininterval=2.0, desc="sweep points", smoothing=0) if progress else None
    for i, r in enumerate(frame.itertuples(index=False)):
        n, b, g = int(r.experts), int(r.batch), int(r.gen)
        hist, misses, any_beyond = _routing(n, float(r.zipf), b)
        # SN40L node with this point's hardware
        rdu = _sn40l_variant(r.hbm_capacity_GB, r.ddr_capacity_TB)
        slots, limit = experts_in_hbm(rdu, dep), max_experts(rdu, dep)
        capacity = experts_in_slow_tier(rdu, dep)
        if n <= limit:
            ex, rt = _rdu_times(r.hbm_bandwidth_GBps * 1e9, g, b, prompt, dep.expert_model, dep.router_model, rdu_tp)
            t_rdu = (rt[b] + hist @ ex + _copies(misses, slots, n) * eb / (rdu_tp * r.ddr_to_hbm_GBps * 1e9)
                     + _copy_batches(any_beyond, slots, n) * rdu_copy_request)
            out[i, 0] = t_rdu
        out[i, 2] = min(slots, n)
        if n <= gpu_max:
            ex, rt = _gpu_times(g, b, dep)
            out[i, 1] = rt[b] + hist @ ex + _copies(misses, gpu_slots, n) * eb / (r.host_link_GBps * 1e9)
        out[i, 3] = capacity
        if bar is not None:
            if i == 0:
                bar.reset(total=len(frame))
            bar.update(1)
    if bar is not None:
        bar.close()
    out[:, :2][~np.isfinite(out[:, :2])] = np.nan  # a batch that does not fit: no time, fits false
    result = frame.copy()
    result["sn40l_ms"] = out[:, 0] * 1e3
    result["dgx_h100_ms"] = out[:, 1] * 1e3
    result["speedup"] = out[:, 1] / out[:, 0]
    result["sn40l_fits"] = ~np.isnan(out[:, 0])
    result["dgx_fits"] = ~np.isnan(out[:, 1])
    return result


def run_shard(spec: dict, shard: int, shards: int, progress: bool = True, coe: dict | None = None) -> pd.DataFrame:
    """Evaluate shard ``shard`` of ``shards`` (points shard, shard + shards, ...) for the deployment
    that the config's ``coe`` section describes (defaults when None)."""
    if not 0 <= shard < shards:
        raise ConfigError("shard", shard, f"0 to {shards - 1}")
    return evaluate_points(points(spec).iloc[shard::shards], progress=progress, dep=CoEDeployment.from_config(coe))
