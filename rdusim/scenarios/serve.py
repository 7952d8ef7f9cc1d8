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

:func:`simulate` returns per-request times (on request) and a summary: p50/p95/p99 latency, TTFT, TPOT
and end-to-end percentiles, goodput, throughput, expert switch rate, HBM hit rate, utilisation, the
time-average number of requests in the system (for Little's law) and whether the run is saturated
(:func:`saturation`). The cache counts a hit or a miss once per expert run: a run whose expert was
copied in since its last run is a miss, so ``copies <= expert_batches`` and the hit rate lies in
[0, 1]; an expert copied in is never evicted before it runs (such a copy would count as wasted), and
no copy starts while every resident expert is running, pinned or waiting for its first run. Placement
(``groups``) splits the node into device groups serving at the same time (:func:`simulate`). The numba kernel :func:`_step` runs the event loop in
chunks of :data:`CHUNK_EVENTS` events, so Ctrl-C stops a long run between chunks; its pure-Python twin
``_step.py_func`` (``simulate(..., use_jit=False)``) is compared with it in the tests. Every input is
checked before the kernel sees it: finite arrivals within :data:`MAX_TIME_S`, expert ids in range, at
most :data:`MAX_REQUESTS` requests.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from benchmarks.models import get_model
from rdusim.core.checks import number, whole
from rdusim.core.errors import ConfigError, Described
from rdusim.core.jit import njit
from rdusim.core.loader import Column, read_csv_columns
from rdusim.core.platforms import load_platform
from rdusim.scenarios.coe import (
    expert_latency_s,
    load_profile,
    router_latency_s,
    copy_request_s,
    switch_bandwidth,
)
from rdusim.scenarios.footprint import CoEDeployment, experts_in_hbm, max_experts
from rdusim.scenarios.predict import clears_with_gpu_constants, predict

POLICIES = ("lru", "lfu", "pinned")
# Bounds of a simulation. MAX_REQUESTS keeps memory bounded (about 90 bytes per request in the loop without
# the per-request table, 1.8 GB at the limit; the table adds about 50); MAX_TIME_S keeps arrival times where float64 still
# resolves microseconds (ulp at 1e9 s is 1.2e-7 s); MAX_EXPERTS and MAX_BATCH bound the per-expert arrays
# and the batch sizes whose service times are evaluated.
MAX_REQUESTS = 20_000_000
MAX_TIME_S = 1e9
MAX_EXPERTS = 100_000
MAX_BATCH = 256
MAX_WAIT_S = 3600.0
MAX_SKEW = 100.0
_POLICY_CODE = {p: i for i, p in enumerate(POLICIES)}
# The loop's counters (``stats``): makespan, busy time, copies started, expert runs, runs that found their
# expert freshly copied (misses: one per run at most), requests x time in the system, router batches,
# copies evicted before their expert ran (wasted).
N_STATS = 8


# Events the numba loop handles per call. Between calls control returns to Python, so Ctrl-C (SIGINT)
# stops a long simulation within a fraction of a second.
CHUNK_EVENTS = 200_000


def _init_state(arrival, n_experts, slots, policy, popularity_rank, max_batch):
    """Arrays and scalars of the event loop, with the warm start: the most popular experts resident."""
    n = arrival.shape[0]
    nq = n_experts + 1
    arrays = dict(
        start=np.full(n, np.nan), finish=np.full(n, np.nan), ttft=np.full(n, np.nan),
        nxt=np.full(n, -1, np.int64), enq=np.zeros(n), head=np.full(nq, -1, np.int64),
        tail=np.full(nq, -1, np.int64), count=np.zeros(nq, np.int64), active=np.empty(nq, np.int64),
        where=np.full(nq, -1, np.int64), resident=np.zeros(n_experts, np.bool_), last_use=np.zeros(n_experts),
        uses=np.zeros(n_experts), pinned=np.zeros(n_experts, np.bool_), fresh=np.zeros(n_experts, np.bool_),
        stats=np.zeros(N_STATS),
        batch=np.empty(max_batch, np.int64),
    )
    n_res = min(slots, n_experts)
    arrays["resident"][:] = popularity_rank < n_res
    if policy == 2:
        keep = n_res if slots >= n_experts else max(slots - 1, 0)
        arrays["pinned"][:] = popularity_rank < keep
    # floats: t, server_end, copy_end, first_arrival; ints: i_arr, done, in_system, n_active, batch_len,
    # batch_q, copy_target, ended (1 once no event is left), experts resident
    arrays["fs"] = np.array([0.0, np.inf, np.inf, arrival[0] if n > 0 else 0.0])
    arrays["ints"] = np.array([0, 0, 0, 0, 0, -1, -1, 0, int(arrays["resident"].sum())], np.int64)
    return arrays


@njit(cache=True)
def _step(arrival, expert, bucket, n_experts, slots, policy, max_batch, max_wait, t_router, t_exec, t_ttft,
          copy_time, overlap, start, finish, ttft, nxt, enq, head, tail, count, active, where, resident, last_use,
          uses, pinned, fresh, stats, batch, fs, ints, max_events):
    """Up to ``max_events`` events of the loop (queue 0 is the router, queue e + 1 expert e); the loop's
    state lives in the arrays and in ``fs``/``ints``. Returns True when the simulation is over."""
    n = arrival.shape[0]
    t, server_end, copy_end, first_arrival = fs[0], fs[1], fs[2], fs[3]
    i_arr, done, in_system, n_active = ints[0], ints[1], ints[2], ints[3]
    batch_len, batch_q, copy_target, ended = ints[4], ints[5], ints[6], ints[7]
    events = 0
    while done < n and ended == 0 and events < max_events:
        events += 1
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
            ended = 1
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
            ints[8] += 1
            fresh[copy_target] = True
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
                n_res_now = ints[8]
                room = slots > 0
                if n_res_now >= slots and slots > 0:
                    # evict by policy: experts copied in and not yet run are never evicted; experts with
                    # requests waiting are spared while others can go
                    victim = -1
                    for spare_waiting in (True, False):
                        best = np.inf
                        for x in range(n_experts):
                            if not resident[x] or (batch_q > 0 and x == batch_q - 1) or pinned[x] or fresh[x]:
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
                        ints[8] -= 1
                        if fresh[victim]:  # copied in and evicted before it ran: a wasted copy
                            stats[7] += 1
                            fresh[victim] = False
                    else:
                        room = False  # every resident expert is running, pinned or waiting for its first run
                if room:
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
                    if fresh[e]:  # the first run since its copy: a miss (once per run)
                        stats[4] += 1
                        fresh[e] = False
                    last_use[e] = t
                    uses[e] += 1
                    for k in range(b):
                        start[batch[k]] = t
                        ttft[batch[k]] = t + t_ttft[b, worst]
                server_end = t + dur
                stats[1] += dur
    fs[0], fs[1], fs[2], fs[3] = t, server_end, copy_end, first_arrival
    ints[0], ints[1], ints[2], ints[3] = i_arr, done, in_system, n_active
    ints[4], ints[5], ints[6], ints[7] = batch_len, batch_q, copy_target, ended
    over = done >= n or ended == 1
    if over:
        stats[0] = t - first_arrival
    return over


def _run(arrival, expert, bucket, n_experts, slots, policy, popularity_rank, max_batch, max_wait,
         t_router, t_exec, t_ttft, copy_time, overlap, use_jit=True, chunk=CHUNK_EVENTS):
    """The event loop, in chunks of ``chunk`` events (numba, or its pure-Python twin with
    ``use_jit=False``). Returns (start, finish, ttft, stats)."""
    s = _init_state(arrival, n_experts, slots, policy, popularity_rank, max_batch)
    step = _step if use_jit else _step.py_func
    while not step(arrival, expert, bucket, n_experts, slots, policy, max_batch, max_wait, t_router, t_exec,
                   t_ttft, copy_time, overlap, s["start"], s["finish"], s["ttft"], s["nxt"], s["enq"], s["head"],
                   s["tail"], s["count"], s["active"], s["where"], s["resident"], s["last_use"], s["uses"],
                   s["pinned"], s["fresh"], s["stats"], s["batch"], s["fs"], s["ints"], chunk):
        pass  # back in Python between chunks: a pending KeyboardInterrupt is raised here
    return s["start"], s["finish"], s["ttft"], s["stats"]


@dataclass(frozen=True)
class ServiceTables:
    """Service times (s) by batch size (rows 0..max_batch) and length bucket (one column for now)."""

    router: np.ndarray
    expert: np.ndarray
    expert_ttft: np.ndarray
    copy_s: float
    slots: int
    max_experts: int
    reason: str = ""


def service_tables(platform: str, experts: int, max_batch: int, prompt: int, gen: int, profile: str = "paper",
                   dep=None) -> ServiceTables:
    """Look-up tables of the serving loop from ``rdusim predict`` and the CoE capacity model (built
    once per platform, batch limit, lengths, profile and deployment; they do not depend on ``experts``).

    ``reason`` is set (and the tables are not usable) when an expert or router batch of some size up to
    ``max_batch`` does not fit or has no finite time: the simulation then reports fits=False."""
    return _service_tables(platform, int(max_batch), int(prompt), int(gen), profile,
                           dep or CoEDeployment.from_config())


@clears_with_gpu_constants
@lru_cache(maxsize=256)
def _service_tables(platform: str, max_batch: int, prompt: int, gen: int, profile: str, dep) -> ServiceTables:
    p = load_platform(platform)
    prof = load_profile(profile)
    tp = min(dep.tensor_parallel, p.devices)
    mode = prof.execution(p)
    batches = np.arange(1, max_batch + 1)
    rows = pd.DataFrame({"platform": platform, "model": dep.expert_model, "batch": batches, "tp": tp,
                         "prompt": prompt, "gen": gen, "execution": mode, "stack": prof.stack(p)})
    ex = predict(rows)
    rt = predict(rows.assign(model=dep.router_model, gen=1))
    reason = ""
    for label, frame, col in (("an expert", ex, "total_ms"), ("the router", rt, "ttft_ms")):
        bad = ~(frame["fits"].to_numpy(bool) & np.isfinite(frame[col].to_numpy(float)))
        if bad.any() and not reason:
            i = int(np.argmax(bad))
            reason = (f"{label} batch of {i + 1} requests ({prompt} + {gen} tokens) does not fit: "
                      f"{frame['reason'].iloc[i] or 'no finite time'}")
    # the profile's expert and router times (published GPU latencies, the SN40L runtime's work), as the CoE model
    dep_g = replace(dep, prompt_tokens=prompt)
    expert = expert_latency_s(platform, dep_g, prof, gen, max_batch)
    router = np.array([0.0] + [router_latency_s(platform, dep_g, prof, int(b)) for b in batches])
    column = lambda v: np.asarray(v, float)[:, None]  # noqa: E731
    return ServiceTables(router=column(router), expert=column(expert),
                         expert_ttft=column(np.concatenate([[0.0], ex.ttft_ms.to_numpy(float) / 1e3])),
                         copy_s=dep.expert_bytes / switch_bandwidth(p, prof, tp) + copy_request_s(p, prof),
                         slots=experts_in_hbm(p, dep), max_experts=max_experts(p, dep), reason=reason)


def _group_tables(platform: str, experts: int, max_batch: int, prompt: int, gen: int, profile: str, dep,
                  groups: int) -> list[tuple[int, ServiceTables]]:
    """``(slots, tables)`` of each of ``groups`` device groups (see :func:`simulate`): service times at
    tp = devices / groups, HBM slots from 1/groups of the node's HBM, copy time per the group's share."""
    p = load_platform(platform)
    if groups == 1:
        tables = service_tables(platform, experts, max_batch, prompt, gen, profile, dep)
        return [(tables.slots, tables)]
    tables = service_tables(platform, experts, max_batch, prompt, gen, profile,
                            replace(dep, tensor_parallel=p.devices // groups))
    free = p.hbm_total / groups * (1 - dep.hbm_reserve_fraction) - dep.hbm_fixed_bytes
    slots = max(0, int(free // dep.expert_bytes))
    shared_link = p.kind == "gpu" and load_profile(profile).gpu_copy == "node_one_link_datasheet"
    tables = replace(tables, copy_s=tables.copy_s * (groups if shared_link else 1), slots=slots)
    return [(slots, tables)] * groups


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
    experts = whole("experts", experts, 1, MAX_EXPERTS)
    skew = number("zipf", skew, 0, MAX_SKEW, what="Zipf skew of expert popularity")
    w = 1.0 / np.arange(1, experts + 1) ** skew
    return w / w.sum()


def poisson_requests(rate: float, requests: int, experts: int, skew: float = 0.0, locality: float = 0.0,
                     seed: int = 0, weights=None) -> pd.DataFrame:
    """Synthetic trace: Poisson arrivals at ``rate``/s, experts drawn from Zipf(``skew``) or ``weights``;
    with ``locality`` in [0, 1) a request repeats the previous request's expert with that probability
    (bursts of the same expert)."""
    requests = whole("requests", requests, 1, MAX_REQUESTS, "the per-request arrays grow with it; split longer runs")
    rate = number("rate", rate, 0, above=True, what="requests per second")
    if requests / rate > MAX_TIME_S:
        raise ConfigError("rate", rate, f"at least {requests / MAX_TIME_S:g} requests/s: {requests:,} requests must "
                          f"arrive within {MAX_TIME_S:g} s, where times still resolve microseconds")
    locality = number("locality", locality, 0, 1, below=True, what="probability of repeating the previous expert")
    seed = whole("seed", seed, 0)
    experts = whole("experts", experts, 1, MAX_EXPERTS)
    rng = np.random.default_rng(seed)
    p = zipf_popularity(experts, skew) if weights is None else _weights("weights", weights, experts)
    arrival = np.cumsum(rng.exponential(1.0 / rate, requests))
    picks = rng.choice(experts, size=requests, p=p)
    if locality > 0:
        repeat = rng.random(requests) < locality
        for i in range(1, requests):
            if repeat[i]:
                picks[i] = picks[i - 1]
    return pd.DataFrame({"arrival_s": arrival, "expert": picks})


def _weights(field: str, values, experts: int) -> np.ndarray:
    """Popularity weights: ``experts`` finite values >= 0, not all zero; returned normalised."""
    try:
        w = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(field, values, f"{experts} finite weights >= 0, not all zero") from None
    if w.shape != (experts,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(field, f"{w.size} values" if w.shape != (experts,) else values,
                          f"{experts} finite weights >= 0, not all zero")
    return w / w.sum()


def trace_schema(experts: int) -> dict[str, Column]:
    """The columns of a trace file (a new column is one entry): arrival times and 0-based expert ids."""
    return {
        "arrival_s": Column("number", 0.0, MAX_TIME_S, what="seconds from the start of the trace"),
        "expert": Column("whole", 0, experts - 1, what="0-based expert id"),
    }


def read_trace(path: str, experts: int) -> pd.DataFrame:
    """A user's log: CSV with a header naming at least the columns of :func:`trace_schema` (others are
    skipped), one request per line, sorted by arrival time here (stable, so ties keep file order).

    Read through :func:`rdusim.core.loader.read_csv_columns`: a missing, binary or oversized file, a
    duplicate or missing column, a ragged row, and a value not of its column's kind (``True`` or ``1.5``
    as an expert id, ``８`` or ``1_0`` as a time) or out of range raise :class:`ConfigError` naming the
    file, the row or line and the column, never the file's content."""
    experts = whole("experts", experts, 1, MAX_EXPERTS)
    columns = read_csv_columns(path, "trace", trace_schema(experts), MAX_REQUESTS)
    trace = pd.DataFrame(columns)
    trace["expert"] = trace["expert"].astype(np.int64)
    return trace.sort_values("arrival_s", kind="stable").reset_index(drop=True)


def check_trace(trace: pd.DataFrame, experts: int, where: str = "trace") -> None:
    """A trace has 1 to :data:`MAX_REQUESTS` rows; ``arrival_s`` finite seconds in [0, :data:`MAX_TIME_S`];
    ``expert`` whole ids 0 to experts - 1. The error names the first bad row (0-based, after the header)."""
    if not isinstance(trace, pd.DataFrame):
        raise ConfigError(where, type(trace).__name__, "a table with columns arrival_s, expert")
    if trace.columns.duplicated().any():
        raise ConfigError(f"{where} columns", [str(c) for c in trace.columns[trace.columns.duplicated()]], "each column once")
    for col in ("arrival_s", "expert"):
        if col not in trace:
            raise ConfigError(f"{where} column {col}", Described(f"{len(trace.columns)} columns without it"),
                              "arrival_s, expert[, prompt, gen]")
        if pd.api.types.is_bool_dtype(trace[col].dtype):
            raise ConfigError(f"{where} column {col}", str(trace[col].dtype), "numbers, not booleans")
    if not 1 <= len(trace) <= MAX_REQUESTS:
        raise ConfigError(f"{where} rows", len(trace), f"1 to {MAX_REQUESTS:,} requests")
    arrival = _numbers(trace["arrival_s"])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arrival) | (arrival < 0) | (arrival > MAX_TIME_S)
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(f"{where} row {i}: arrival_s", trace["arrival_s"].iloc[i],
                          f"a finite time in seconds from 0 to {MAX_TIME_S:g}")
    ids = _numbers(trace["expert"])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(ids) | (ids < 0) | (ids > experts - 1) | (ids != np.round(ids))
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(f"{where} row {i}: expert", trace["expert"].iloc[i], f"a whole expert id from 0 to {experts - 1}")


def _numbers(column: pd.Series) -> np.ndarray:
    """A trace column as float64 (NaN where a value is missing, not a number, or a boolean)."""
    if column.dtype == object:  # mixed values: a bool among numbers is not an id or a time
        column = column.map(lambda v: np.nan if isinstance(v, (bool, np.bool_)) else v)
    values = pd.to_numeric(column, errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan)


# A run is saturated when its backlog (requests arrived and not finished) at the last arrival exceeds 1.5 times
# the backlog a fifth into the run, plus 10 (the queue grows for the whole run, so its percentiles depend on
# the run's length), or its server is busy 99% of the time (CoE node; a decoding engine is busy at any load).
SATURATION_GROWTH = 1.5
SATURATION_SLACK = 10
SATURATION_BUSY = 0.99


def saturation(arrival: np.ndarray, finish: np.ndarray, busy: float = 0.0) -> tuple[float, bool]:
    """``(offered_rps, saturated)``: the offered rate (requests over the span of their arrivals, sorted) and
    whether the server fell behind it: its backlog at the last arrival exceeds :data:`SATURATION_GROWTH`
    times its backlog at the arrival of the first fifth of the requests plus :data:`SATURATION_SLACK`, or
    the server was busy a fraction ``busy`` of at least :data:`SATURATION_BUSY` of the run."""
    n = arrival.shape[0]
    span = float(arrival[-1] - arrival[0]) if n > 1 else 0.0
    offered = (n - 1) / span if span > 0 else float("nan")
    grew = False
    if n >= 10:
        early_t, end_t = arrival[n // 5], arrival[-1]
        early = n // 5 + 1 - int(np.count_nonzero(finish <= early_t))
        end = n - int(np.count_nonzero(finish <= end_t))
        grew = end > SATURATION_GROWTH * early + SATURATION_SLACK
    return offered, bool(grew or busy >= SATURATION_BUSY)


PERCENTILES = (50, 90, 99)


def latency_summary(name: str, seconds: np.ndarray) -> dict:
    """``{name}_ms_mean``, ``_p50``, ``_p90``, ``_p99`` of the finite values (NaN when there are none)."""
    v = seconds[np.isfinite(seconds)] * 1e3
    out = {f"{name}_ms_mean": float(v.mean()) if v.size else float("nan")}
    qs = np.percentile(v, PERCENTILES) if v.size else [float("nan")] * len(PERCENTILES)
    out.update({f"{name}_ms_p{q}": float(x) for q, x in zip(PERCENTILES, qs)})
    return out


def simulate(platform: str, experts: int, trace: pd.DataFrame, policy: str = "lru", max_batch: int = 8,
             max_wait_s: float = 0.05, prompt: int = 128, gen: int = 20, profile: str = "paper",
             overlap: bool = True, popularity=None, dep=None, use_jit: bool = True,
             per_request: bool = True, groups: int = 1, ttft_slo_s: float = 1.0,
             tpot_slo_s: float = 0.1) -> tuple[dict, pd.DataFrame]:
    """Serve ``trace`` (sorted by arrival) on ``platform``; returns (summary, per-request frame; empty with
    ``per_request=False``, which saves building it). The summary has TTFT, TPOT and end-to-end latency
    percentiles in ms (as :mod:`rdusim.scenarios.serve_model`) and goodput: requests/s within both
    ``ttft_slo_s`` and ``tpot_slo_s``.

    Placement (``groups``): 1, every expert over all the node's devices (tensor-parallel), one batch at a
    time (the article's TP8); ``g`` > 1, the devices split into ``g`` groups of ``devices / g`` (GPUs, or
    SN40L sockets), each a server of its own running at the same time as the others, with ``1/g`` of the
    node's HBM (beside a copy of the router and the KV reserve), its own copy engine share, and the
    experts dealt to the groups by popularity rank (rank k to group k mod g) so the load is balanced.
    Assumption: a request's router pass runs on the group of its expert (the router replicated in every
    group), so the groups do not interact. On a DGX under the ``paper`` profile (one host link for the
    node) each group copies at ``1/g`` of the link.

    Every argument is checked first (:class:`ConfigError` naming it); a deployment that cannot run
    (OOM, or a batch that does not fit) is a summary with fits=False and a reason."""
    if not isinstance(policy, str) or policy not in POLICIES:
        raise ConfigError("policy", policy if isinstance(policy, str) else type(policy).__name__, ", ".join(POLICIES))
    for name, flag in (("overlap", overlap), ("use_jit", use_jit)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ConfigError(name, type(flag).__name__, "True or False")
    if dep is not None and not isinstance(dep, CoEDeployment):
        raise ConfigError("dep", type(dep).__name__, "a CoEDeployment or None (the defaults of coe_defaults.yaml)")
    load_platform(platform)  # a clear error for a platform that is not a name or path
    load_profile(profile)
    experts = whole("experts", experts, 1, MAX_EXPERTS)
    max_batch = whole("max_batch", max_batch, 1, MAX_BATCH, "requests per expert batch")
    max_wait_s = number("max_wait_s", max_wait_s, 0, MAX_WAIT_S, what="seconds a request waits for its batch")
    prompt = whole("prompt", prompt, 1, 2**31)
    gen = whole("gen", gen, 1, 2**31)
    ttft_slo_s = number("ttft_slo", ttft_slo_s, 0, above=True, what="seconds")
    tpot_slo_s = number("tpot_slo", tpot_slo_s, 0, above=True, what="seconds")
    dep = dep or CoEDeployment.from_config()
    for model, tokens in ((dep.expert_model, prompt + gen), (dep.router_model, prompt + 1)):
        window = get_model(model).context_window
        if window and tokens > window:
            raise ConfigError("prompt + gen", tokens, f"at most {window:,} tokens (the context window of {model})")
    check_trace(trace, experts)
    devices = load_platform(platform).devices
    groups = whole("groups", groups, 1, devices)
    if devices % groups:
        raise ConfigError("groups", groups, f"a divisor of the {devices} devices of {platform}")
    arrival = _numbers(trace["arrival_s"])
    if np.any(np.diff(arrival) < 0):
        raise ConfigError("trace arrival_s", "unsorted", "arrival times in ascending order (read_trace sorts a file)")
    p = zipf_popularity(experts, 0.0) if popularity is None else _weights("popularity", popularity, experts)
    tables = service_tables(platform, experts, max_batch, prompt, gen, profile, dep)
    if experts > tables.max_experts:
        return {"platform": platform, "experts": experts, "fits": False,
                "reason": f"{experts} experts > {tables.max_experts} that fit"}, pd.DataFrame()
    if tables.reason:
        return {"platform": platform, "experts": experts, "fits": False, "reason": tables.reason}, pd.DataFrame()
    rank = np.empty(experts, np.int64)
    rank[np.argsort(-p, kind="stable")] = np.arange(experts)
    expert = _numbers(trace["expert"]).astype(np.int64)
    n = len(trace)
    start, finish, ttft = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    stats = np.zeros(N_STATS)
    placed = _group_tables(platform, experts, max_batch, prompt, gen, profile, dep, groups)
    if placed[0][1].reason:
        return {"platform": platform, "experts": experts, "fits": False,
                "reason": f"groups of {devices // groups} devices: {placed[0][1].reason}"}, pd.DataFrame()
    for g, (slots, tab) in enumerate(placed):
        hosted = rank % groups == g  # experts of group g, renumbered 0.. in id order
        local = np.cumsum(hosted) - 1
        mine = np.flatnonzero(hosted[expert]) if groups > 1 else np.arange(n)
        if mine.size == 0:
            continue
        sub_rank = np.empty(int(hosted.sum()), np.int64)
        sub_rank[np.argsort(rank[hosted], kind="stable")] = np.arange(sub_rank.size)
        s0, f0, t0, st = _run(arrival[mine], local[expert[mine]], np.zeros(mine.size, np.int64), int(hosted.sum()),
                              slots, _POLICY_CODE[policy], sub_rank, max_batch, max_wait_s, tab.router, tab.expert,
                              tab.expert_ttft, tab.copy_s, overlap, use_jit=use_jit)
        start[mine], finish[mine], ttft[mine] = s0, f0, t0
        stats += st
    stats[0] = float(np.max(finish) - arrival[0]) if n else 0.0
    stats[1] /= groups  # busy: the mean over groups
    lat = finish - arrival
    frame = pd.DataFrame({"arrival_s": arrival, "expert": expert, "start_s": start, "finish_s": finish,
                          "ttft_s": ttft - arrival, "latency_s": lat}) if per_request else pd.DataFrame()
    makespan = stats[0]
    offered, saturated = saturation(arrival, finish, stats[1] / makespan if makespan > 0 else 0.0)
    if not (np.all(np.isfinite(lat)) and makespan > 0):
        return {"platform": platform, "experts": experts, "fits": False,
                "reason": "the simulation left requests unserved or times unresolved"}, frame
    p50, p90, p95, p99 = (float(v) for v in np.percentile(lat, [50, 90, 95, 99]))
    tpot = (finish - ttft) / (gen - 1) if gen > 1 else np.full(n, np.nan)
    good = (ttft - arrival <= ttft_slo_s) & ~(tpot > tpot_slo_s)
    summary = {
        "platform": platform, "experts": experts, "policy": policy, "fits": True, "reason": "",
        "requests": len(trace), "p50_s": p50, "p95_s": p95, "p99_s": p99, "mean_s": float(lat.mean()),
        "mean_ttft_s": float((ttft - arrival).mean()),
        "throughput_rps": len(trace) / makespan,
        "switches_per_s": stats[2] / makespan,
        # a rate and a share: within [0, 1] by definition (guards; the counts themselves are the loop's)
        "hbm_hit_rate": min(1.0, max(0.0, 1.0 - stats[4] / stats[3])) if stats[3] else 1.0,
        "utilisation": min(1.0, max(0.0, stats[1] / makespan)),
        "mean_in_system": stats[5] / makespan,
        "expert_batches": int(stats[3]), "copies": int(stats[4]), "copies_started": int(stats[2]),
        "wasted_copies": int(stats[7]), "wasted_copy_bytes": float(stats[7] * dep.expert_bytes),
        "slots": sum(sl for sl, _ in placed),
        "groups": groups, "tp": load_platform(platform).devices // groups,
        "offered_rps": offered, "saturated": bool(saturated),
        **latency_summary("ttft", ttft - arrival), **latency_summary("tpot", tpot),
        "e2e_ms_mean": float(lat.mean()) * 1e3, "e2e_ms_p50": p50 * 1e3, "e2e_ms_p90": p90 * 1e3, "e2e_ms_p99": p99 * 1e3,
        "ttft_slo_ms": ttft_slo_s * 1e3, "tpot_slo_ms": tpot_slo_s * 1e3,
        "goodput_rps": float(np.sum(good)) / makespan, "slo_attainment": float(np.mean(good)),
    }
    return summary, frame
