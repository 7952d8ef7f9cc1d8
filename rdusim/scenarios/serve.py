"""Trace-driven CoE serving: a discrete-event simulation of one CoE deployment on one node.

Model (issue "Beyond the article"):

* Requests arrive (Poisson at a rate, or replayed from a trace) and first pass the router, which
  batches them like any resident model; each then joins its expert's FIFO queue.
* A queue becomes ready when it holds ``max_batch`` requests or its oldest request has waited
  ``max_wait``. The node (all its devices, tensor-parallel) serves one batch at a time: the ready
  queue with the oldest request among those whose model is in HBM.
* HBM holds ``slots`` experts (beside the router and KV cache) under a policy: ``lru`` or ``lfu``
  eviction, or ``pinned`` (the most popular ``slots - 1`` experts stay, the rest share one slot).
  A ready queue whose expert is not resident starts a copy on the node's copy engine (DDR on the
  SN40L, host DRAM on a GPU) at the platform's switching bandwidth. Assumption: both platforms copy
  with DMA engines while computing, so a copy overlaps the execution of other batches
  (``overlap=False`` makes the node wait for copies instead).
* Service times come from the same model as ``rdusim predict``: a batch of b requests of the expert
  takes its prompt pass plus G decode steps; the router takes its prompt pass. They are computed once
  per batch size for one prompt length and output length (the simulation's arguments) and looked up
  in the loop; per-request lengths in a trace are not used yet (the tables keep a length-bucket axis
  of size one for that).

:func:`simulate` returns per-request times and a summary: p50/p95/p99 latency, mean time to first
token, throughput, expert switch rate, HBM hit rate, utilisation, and the time-average number of
requests in the system (for Little's law). The numba kernel :func:`_run` has its pure-Python twin
``_run.py_func``; tests compare them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.scenarios.coe import load_profile, switch_bandwidth
from rdusim.scenarios.footprint import CoEDeployment, experts_in_hbm, max_experts
from rdusim.scenarios.predict import predict

POLICIES = ("lru", "lfu", "pinned")
_POLICY_CODE = {p: i for i, p in enumerate(POLICIES)}


@njit(cache=True)
def _run(arrival, expert, bucket, n_experts, slots, policy, popularity_rank, max_batch, max_wait,
         t_router, t_exec, t_ttft, copy_time, overlap):
    """Event loop. Queue 0 is the router, queue e + 1 expert e. Returns (start, finish, ttft, stats)."""
    n = arrival.shape[0]
    nq = n_experts + 1
    start = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    ttft = np.full(n, np.nan)
    nxt = np.full(n, -1, np.int64)
    enq = np.zeros(n)
    head = np.full(nq, -1, np.int64)
    tail = np.full(nq, -1, np.int64)
    count = np.zeros(nq, np.int64)
    active = np.empty(nq, np.int64)
    where = np.full(nq, -1, np.int64)
    n_active = 0
    resident = np.zeros(n_experts, np.bool_)
    last_use = np.zeros(n_experts)
    uses = np.zeros(n_experts)
    pinned = np.zeros(n_experts, np.bool_)
    # warm start: the most popular experts are resident
    n_res = min(slots, n_experts)
    for e in range(n_experts):
        if popularity_rank[e] < n_res:
            resident[e] = True
    if policy == 2:
        keep = n_res if slots >= n_experts else max(slots - 1, 0)
        for e in range(n_experts):
            pinned[e] = popularity_rank[e] < keep
    stats = np.zeros(7)
    batch = np.empty(max_batch, np.int64)
    batch_len = 0
    batch_q = -1
    server_end = np.inf
    copy_end = np.inf
    copy_target = -1
    t = 0.0
    i_arr = 0
    done = 0
    in_system = 0
    first_arrival = arrival[0] if n > 0 else 0.0
    while done < n:
        # ---- next event time
        t_next = np.inf
        if i_arr < n:
            t_next = arrival[i_arr]
        if server_end < t_next:
            t_next = server_end
        if copy_end < t_next:
            t_next = copy_end
        if server_end == np.inf:
            for a in range(n_active):
                q = active[a]
                if count[q] < max_batch:
                    d = enq[head[q]] + max_wait
                    if d > t and d < t_next:
                        t_next = d
        if t_next == np.inf:
            break
        stats[5] += (t_next - t) * in_system
        t = t_next
        # ---- arrivals
        while i_arr < n and arrival[i_arr] <= t:
            r = i_arr
            enq[r] = arrival[r]
            if count[0] == 0:
                head[0] = r
                where[0] = n_active
                active[n_active] = 0
                n_active += 1
            else:
                nxt[tail[0]] = r
            tail[0] = r
            count[0] += 1
            in_system += 1
            i_arr += 1
        # ---- copy completion
        if copy_end <= t:
            resident[copy_target] = True
            last_use[copy_target] = t
            copy_end = np.inf
            copy_target = -1
        # ---- batch completion
        if server_end <= t:
            for k in range(batch_len):
                r = batch[k]
                if batch_q == 0:
                    q = expert[r] + 1
                    enq[r] = t
                    nxt[r] = -1
                    if count[q] == 0:
                        head[q] = r
                        where[q] = n_active
                        active[n_active] = q
                        n_active += 1
                    else:
                        nxt[tail[q]] = r
                    tail[q] = r
                    count[q] += 1
                else:
                    finish[r] = t
                    done += 1
                    in_system -= 1
            server_end = np.inf
            batch_len = 0
            batch_q = -1
        # ---- pick the next batch and start copies
        if server_end == np.inf or (overlap and copy_end == np.inf):
            best_res = -1
            best_res_t = np.inf
            best_miss = -1
            best_miss_t = np.inf
            for a in range(n_active):
                q = active[a]
                h = enq[head[q]]
                ready = count[q] >= max_batch or t >= h + max_wait or (i_arr >= n and server_end == np.inf)
                if not ready:
                    continue
                if q == 0 or resident[q - 1]:
                    if h < best_res_t:
                        best_res_t = h
                        best_res = q
                elif q - 1 != copy_target and h < best_miss_t:
                    best_miss_t = h
                    best_miss = q
            # a copy for the oldest ready non-resident expert
            if best_miss >= 0 and copy_end == np.inf and (overlap or server_end == np.inf) and \
                    (best_res < 0 or best_miss_t < best_res_t or overlap):
                e = best_miss - 1
                # evict a victim if HBM is full
                n_res_now = 0
                for x in range(n_experts):
                    if resident[x]:
                        n_res_now += 1
                if n_res_now >= slots and slots > 0:
                    # evict by policy; experts with requests waiting are spared while others can go
                    victim = -1
                    for spare_waiting in (True, False):
                        best = np.inf
                        for x in range(n_experts):
                            if not resident[x] or (batch_q > 0 and x == batch_q - 1) or pinned[x]:
                                continue
                            if spare_waiting and count[x + 1] > 0:
                                continue
                            key = last_use[x] if policy != 1 else uses[x] * 1e12 + last_use[x]
                            if key < best:
                                best = key
                                victim = x
                        if victim >= 0:
                            break
                    if victim >= 0:
                        resident[victim] = False
                if slots > 0:
                    copy_target = e
                    copy_end = t + copy_time
                    stats[2] += 1
                    if not overlap:
                        server_end = copy_end  # the node waits for the copy
                        batch_len = 0
                        batch_q = -1
            if server_end == np.inf and best_res >= 0:
                q = best_res
                b = min(count[q], max_batch)
                worst = 0
                for k in range(b):
                    r = head[q]
                    head[q] = nxt[r]
                    batch[k] = r
                    if bucket[r] > worst:
                        worst = bucket[r]
                count[q] -= b
                if count[q] == 0:
                    tail[q] = -1
                    pos = where[q]
                    n_active -= 1
                    last = active[n_active]
                    active[pos] = last
                    where[last] = pos
                    where[q] = -1
                batch_len = b
                batch_q = q
                if q == 0:
                    dur = t_router[b, worst]
                    stats[6] += 1
                else:
                    e = q - 1
                    dur = t_exec[b, worst]
                    stats[3] += 1
                    stats[4] += 1  # chosen only when resident: the miss was counted as a copy
                    last_use[e] = t
                    uses[e] += 1
                    for k in range(b):
                        start[batch[k]] = t
                        ttft[batch[k]] = t + t_ttft[b, worst]
                server_end = t + dur
                stats[1] += dur
    stats[0] = t - first_arrival
    return start, finish, ttft, stats


@dataclass(frozen=True)
class ServiceTables:
    """Service times (s) by batch size (rows 0..max_batch) and length bucket (one column for now)."""

    router: np.ndarray
    expert: np.ndarray
    expert_ttft: np.ndarray
    copy_s: float
    slots: int
    max_experts: int


def service_tables(platform: str, experts: int, max_batch: int, prompt: int, gen: int, profile: str = "paper",
                   dep=None) -> ServiceTables:
    """Look-up tables of the serving loop from ``rdusim predict`` and the CoE capacity model."""


    dep = dep or CoEDeployment.from_config()
    p = load_platform(platform)
    tp = min(dep.tensor_parallel, p.devices)
    mode = load_profile(profile).execution(p)
    batches = np.arange(1, max_batch + 1)
    rows = pd.DataFrame({"platform": platform, "model": dep.expert_model, "batch": batches, "tp": tp,
                         "prompt": prompt, "gen": gen, "execution": mode})
    ex = predict(rows)
    rt = predict(rows.assign(model=dep.router_model, gen=1))
    pad = lambda v: np.concatenate([[0.0], np.asarray(v, float)])[:, None] / 1e3  # noqa: E731
    return ServiceTables(router=pad(rt.ttft_ms), expert=pad(ex.total_ms), expert_ttft=pad(ex.ttft_ms),
                         copy_s=dep.expert_bytes / switch_bandwidth(p, load_profile(profile), tp),
                         slots=experts_in_hbm(p, dep), max_experts=max_experts(p, dep))


def light_load_floor(platform: str, experts: int, max_wait_s: float = 0.05, prompt: int = 128, gen: int = 20,
                     profile: str = "paper", dep=None) -> dict:
    """What a lone request's latency is made of when nothing else is queued (seconds): it waits
    ``max_wait_s`` for the router's batch to fill, runs the router, waits ``max_wait_s`` again for its
    expert's batch, then runs the expert alone; ``copy_s`` more when its expert is not in HBM."""
    tables = service_tables(platform, experts, 1, prompt, gen, profile, dep)
    router, expert = float(tables.router[1, 0]), float(tables.expert[1, 0])
    return {"router_wait_s": max_wait_s, "router_s": router, "expert_wait_s": max_wait_s, "expert_s": expert,
            "floor_s": 2 * max_wait_s + router + expert, "copy_s": float(tables.copy_s)}


def zipf_popularity(experts: int, skew: float) -> np.ndarray:
    """Zipf popularity: expert k (1-based) is picked with weight k^-skew (skew 0 = uniform)."""
    if skew < 0:
        raise ConfigError("zipf", skew, "a skew >= 0")
    w = 1.0 / np.arange(1, experts + 1) ** skew
    return w / w.sum()


def poisson_requests(rate: float, requests: int, experts: int, skew: float = 0.0, locality: float = 0.0,
                     seed: int = 0, weights=None) -> pd.DataFrame:
    """Synthetic trace: Poisson arrivals at ``rate``/s, experts drawn from Zipf(``skew``) or ``weights``;
    with ``locality`` in [0, 1) a request repeats the previous request's expert with that probability
    (bursts of the same expert)."""
    if rate <= 0:
        raise ConfigError("rate", rate, "requests per second > 0")
    if requests < 1:
        raise ConfigError("requests", requests, "a whole number >= 1")
    if not 0 <= locality < 1:
        raise ConfigError("locality", locality, "a probability in [0, 1)")
    rng = np.random.default_rng(seed)
    p = zipf_popularity(experts, skew) if weights is None else np.asarray(weights, float) / np.sum(weights)
    arrival = np.cumsum(rng.exponential(1.0 / rate, requests))
    picks = rng.choice(experts, size=requests, p=p)
    if locality > 0:
        repeat = rng.random(requests) < locality
        for i in range(1, requests):
            if repeat[i]:
                picks[i] = picks[i - 1]
    return pd.DataFrame({"arrival_s": arrival, "expert": picks})


def read_trace(path: str, experts: int) -> pd.DataFrame:
    """A user's log: CSV with columns arrival_s and expert (0-based); other columns are kept but unused."""
    trace = pd.read_csv(path)
    for col in ("arrival_s", "expert"):
        if col not in trace:
            raise ConfigError(f"trace column {col}", sorted(trace.columns), "arrival_s, expert[, prompt, gen]")
    if trace["expert"].min() < 0 or trace["expert"].max() >= experts:
        raise ConfigError("trace expert", int(trace["expert"].max()), f"ids 0 to {experts - 1}")
    return trace.sort_values("arrival_s", kind="stable").reset_index(drop=True)


def simulate(platform: str, experts: int, trace: pd.DataFrame, policy: str = "lru", max_batch: int = 8,
             max_wait_s: float = 0.05, prompt: int = 128, gen: int = 20, profile: str = "paper",
             overlap: bool = True, popularity=None, dep=None, use_jit: bool = True) -> tuple[dict, pd.DataFrame]:
    """Serve ``trace`` on ``platform``; returns (summary, per-request frame). OOM is a summary with fits=False."""
    if policy not in POLICIES:
        raise ConfigError("policy", policy, ", ".join(POLICIES))
    if max_batch < 1 or max_wait_s < 0:
        raise ConfigError("batching", (max_batch, max_wait_s), "max_batch >= 1 and max_wait >= 0")
    tables = service_tables(platform, experts, max_batch, prompt, gen, profile, dep)
    if experts > tables.max_experts:
        return {"platform": platform, "experts": experts, "fits": False,
                "reason": f"{experts} experts > {tables.max_experts} that fit"}, pd.DataFrame()
    p = zipf_popularity(experts, 0.0) if popularity is None else np.asarray(popularity, float)
    if p.shape != (experts,):
        raise ConfigError("popularity", p.shape, f"{experts} weights")
    rank = np.empty(experts, np.int64)
    rank[np.argsort(-p, kind="stable")] = np.arange(experts)
    arrival = trace["arrival_s"].to_numpy(float)
    expert = trace["expert"].to_numpy(np.int64)
    bucket = np.zeros(len(trace), np.int64)
    fn = _run if use_jit else _run.py_func
    start, finish, ttft, stats = fn(arrival, expert, bucket, experts, tables.slots, _POLICY_CODE[policy], rank,
                                    max_batch, max_wait_s, tables.router, tables.expert, tables.expert_ttft,
                                    tables.copy_s, overlap)
    per_request = pd.DataFrame({"arrival_s": arrival, "expert": expert, "start_s": start, "finish_s": finish,
                                "ttft_s": ttft - arrival, "latency_s": finish - arrival})
    lat = per_request["latency_s"].to_numpy()
    makespan = stats[0]
    summary = {
        "platform": platform, "experts": experts, "policy": policy, "fits": True, "reason": "",
        "requests": len(trace), "p50_s": float(np.percentile(lat, 50)), "p95_s": float(np.percentile(lat, 95)),
        "p99_s": float(np.percentile(lat, 99)), "mean_s": float(lat.mean()),
        "mean_ttft_s": float(per_request["ttft_s"].mean()),
        "throughput_rps": len(trace) / makespan if makespan > 0 else float("nan"),
        "switches_per_s": stats[2] / makespan if makespan > 0 else 0.0,
        "hbm_hit_rate": 1.0 - stats[2] / stats[3] if stats[3] else 1.0,
        "utilisation": stats[1] / makespan if makespan > 0 else 0.0,
        "mean_in_system": stats[5] / makespan if makespan > 0 else 0.0,
        "expert_batches": int(stats[3]), "copies": int(stats[2]), "slots": tables.slots,
    }
    return summary, per_request
