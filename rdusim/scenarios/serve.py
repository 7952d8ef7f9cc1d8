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
(``groups``) splits the node into device groups serving at the same time (:func:`simulate`).

Speed and scale (issue 22): the numba kernel :func:`_step` runs the event loop in chunks of
:data:`CHUNK_EVENTS` events, so Ctrl-C stops a long run between chunks; its pure-Python twin
``_step.py_func`` (``simulate(..., use_jit=False)``) is compared with it in the tests. Arrivals are fed
to it in chunks (:data:`FEED_REQUESTS`); the requests in the system live in a ring of slots that doubles
when full, and each finished request goes into the summary's counters and log-spaced histograms
(:data:`HIST_PER_OCTAVE`; percentiles within :data:`HIST_RESOLUTION` of the exact ones), so
:func:`simulate_poisson` (the CLI without ``--trace``/``--requests-csv``) runs in memory that does not
grow with the requests; the per-request frame is kept only on request. Every input is checked before the
kernel sees it: finite arrivals within :data:`MAX_TIME_S`, expert ids in range, at most
:data:`MAX_REQUESTS` requests in a table.

What keeps the loop at about 130 ns a request (10 million in 1.3 s of one core): the queues with requests
are listed with their head time, size and residency side by side (``act_*``), so picking a batch reads
three small arrays and skips every queue not older than the best found so far; LRU and pinned eviction
take the first expert that may go from a list kept in (last use, id) order instead of scanning every
resident expert; histogram bins come from the bits of the value (:func:`_bin`); the Poisson trace is drawn
by :mod:`rdusim.scenarios.draws`. None of these changes a result: the same trace gives the same numbers bit
for bit (ties still go to the queue first in ``active``, and to the lowest expert id).
"""
from __future__ import annotations

import math
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
from rdusim.scenarios.draws import choice_cdf, guide_table, pick_by_cdf, running_sum
from rdusim.scenarios.footprint import CoEDeployment, experts_in_hbm, max_experts
from rdusim.scenarios.predict import clears_with_gpu_constants, predict

POLICIES = ("lru", "lfu", "pinned")
GEN_TOKENS = 20  # output tokens of a CoE request unless told otherwise (the article's Table 2 runs)
# Bounds of a simulation. MAX_REQUESTS bounds a trace held as a table (16 bytes a request, 48 more with the
# per-request frame); MAX_TIME_S keeps arrival times where float64 still
# resolves microseconds (ulp at 1e9 s is 1.2e-7 s); MAX_EXPERTS and MAX_BATCH bound the per-expert arrays
# and the batch sizes whose service times are evaluated.
MAX_REQUESTS = 20_000_000
# A streamed run (:func:`simulate_poisson`) keeps no per-request table: its memory is the requests in the system;
# it is bounded by time (MAX_TIME_S), and by 2^53 so that request counts stay exact in float64.
MAX_STREAM_REQUESTS = 2**53
MAX_TIME_S = 1e9
MAX_EXPERTS = 100_000
MAX_BATCH = 256
MAX_WAIT_S = 3600.0
MAX_SKEW = 100.0
_POLICY_CODE = {p: i for i, p in enumerate(POLICIES)}


# Events the numba loop handles per call. Between calls control returns to Python, so Ctrl-C (SIGINT)
# stops a long simulation within a fraction of a second.
CHUNK_EVENTS = 200_000


# Streaming summaries: log-spaced histograms of latency, TTFT and TPOT. A value x = m * 2^e (m in [0.5, 1),
# math.frexp) falls in bin (e - HIST_MIN_EXP) * HIST_PER_OCTAVE + floor((m - 0.5) * 2 * HIST_PER_OCTAVE): each
# octave is split into HIST_PER_OCTAVE equal bins, so a bin is at most 2^-10 = 0.098% of its lower edge wide and
# a percentile read at bin midpoints is within HIST_RESOLUTION = 2^-11 (0.049%) of the exact one. The bins cover
# 2^-30 s (1 ns) to 2^30 s (beyond MAX_TIME_S); values outside are counted in the first or the last bin.
HIST_OCTAVE_BITS = 10
HIST_PER_OCTAVE = 1 << HIST_OCTAVE_BITS
HIST_MIN_EXP = -29
HIST_MAX_EXP = 31
HIST_BINS = (HIST_MAX_EXP - HIST_MIN_EXP) * HIST_PER_OCTAVE
HIST_RESOLUTION = 2.0 ** -11
# The loop's counters (``stats``): 0 makespan (unused), 1 busy time, 2 copies started, 3 expert runs, 4 runs that
# found their expert freshly copied (misses: one per run at most), 5 requests x time in the system, 6 router
# batches, 7 copies evicted before their expert ran (wasted), 8 requests finished by the early saturation mark,
# 9 by the end mark (:func:`saturation`), 10 requests within both SLOs, 11 sum of latency, 12 sum of TTFT,
# 13 sum of TPOT, 14 TPOTs counted, 15 last finish time.
N_STATS = 16
# ints of the loop: 0 position in the arrival chunk, 1 requests arrived, 2 done, 3 in system, 4 active queues,
# 5 batch length, 6 batch queue, 7 copy target, 8 ended, 9 experts resident, 10 oldest unfinished request,
# 11 queues with requests whose expert is not resident, 12 and 13 the least and the most recently used resident
# expert (the ends of the LRU list)
N_INTS = 14
_NEED_ARRIVALS, _OVER, _PAUSED, _NEED_ROOM = 0, 1, 2, 3
RING_SLOTS = 1 << 12  # request slots a loop starts with (doubled whenever more requests are in the system)
FEED_REQUESTS = 1 << 20  # arrivals handed to the loop at a time (the trace is generated in chunks of this size)


def bin_reference(x: float) -> int:
    """The histogram bin of a value ``x`` (see :data:`HIST_PER_OCTAVE`), from :func:`math.frexp`: the definition
    that :func:`_bin` computes from the bits of ``x``."""
    if not x > 0.0:
        return 0
    if x == math.inf:
        return HIST_BINS - 1
    m, e = math.frexp(x)
    k = (e - HIST_MIN_EXP) * HIST_PER_OCTAVE + int((m - 0.5) * (2 * HIST_PER_OCTAVE))
    return min(max(k, 0), HIST_BINS - 1)


@njit(cache=True, inline="always")
def _bin(x):
    """The histogram bin of a value ``x`` (see :data:`HIST_PER_OCTAVE`; :func:`bin_reference`), read from the
    IEEE 754 bits of ``x`` > 0: its biased exponent E is frexp's e + 1022 and the top HIST_OCTAVE_BITS bits
    of its fraction are floor((m - 0.5) * 2 * HIST_PER_OCTAVE), exactly (subnormals fall below the first bin,
    infinity above the last). No call to frexp: three of these run for every request."""
    if not x > 0.0:
        return 0
    bits = np.float64(x).view(np.int64)
    octave = (bits >> 52) - 1022 - HIST_MIN_EXP
    k = octave * HIST_PER_OCTAVE + ((bits >> (52 - HIST_OCTAVE_BITS)) & (HIST_PER_OCTAVE - 1))
    if k < 0:
        return 0
    if k >= HIST_BINS:
        return HIST_BINS - 1
    return k


@njit(cache=True, inline="always")
def _lru_unlink(e, lru_prev, lru_next, lru_head, lru_tail):
    """Take expert ``e`` out of the doubly linked LRU list (``-1`` ends it); returns the new head and tail."""
    p, n = lru_prev[e], lru_next[e]
    if p >= 0:
        lru_next[p] = n
    else:
        lru_head = n
    if n >= 0:
        lru_prev[n] = p
    else:
        lru_tail = p
    return lru_head, lru_tail


@njit(cache=True, inline="always")
def _lru_insert(e, t, last_use, lru_prev, lru_next, lru_head, lru_tail):
    """Put expert ``e``, just used at ``t``, into the LRU list after the experts used before it or at the
    same time with a lower id (the list stays in (last use, id) order); returns the new head and tail."""
    p = lru_tail
    while p >= 0 and last_use[p] == t and p > e:
        p = lru_prev[p]
    n = lru_next[p] if p >= 0 else lru_head
    lru_prev[e] = p
    lru_next[e] = n
    if p >= 0:
        lru_next[p] = e
    else:
        lru_head = e
    if n >= 0:
        lru_prev[n] = e
    else:
        lru_tail = e
    return lru_head, lru_tail


def hist_edges() -> np.ndarray:
    """The ``HIST_BINS + 1`` bin edges (s) of the streaming histograms."""
    e = np.repeat(np.arange(HIST_MIN_EXP, HIST_MAX_EXP), HIST_PER_OCTAVE)
    k = np.tile(np.arange(HIST_PER_OCTAVE), HIST_MAX_EXP - HIST_MIN_EXP)
    lower = np.ldexp(0.5 + k / (2 * HIST_PER_OCTAVE), e)
    return np.append(lower, np.ldexp(1.0, HIST_MAX_EXP))


def hist_percentiles(counts: np.ndarray, qs) -> list[float]:
    """Percentiles ``qs`` (0-100) of the values counted in ``counts``, as :func:`numpy.percentile` (linear
    between order statistics) with each order statistic read at its bin's midpoint: within
    :data:`HIST_RESOLUTION` of the exact percentile (NaN when nothing was counted)."""
    n = int(counts.sum())
    if n == 0:
        return [float("nan")] * len(qs)
    edges = hist_edges()
    mid = (edges[:-1] + edges[1:]) / 2
    cum = np.cumsum(counts)
    out = []
    for q in qs:
        pos = q / 100 * (n - 1)
        k = int(np.floor(pos))
        lo = mid[np.searchsorted(cum, k, side="right")]
        hi = mid[np.searchsorted(cum, min(k + 1, n - 1), side="right")]
        out.append(float(lo + (pos - k) * (hi - lo)))
    return out


def _new_state(n_experts, slots, policy, popularity_rank, max_batch, capacity, n_out):
    """Arrays and scalars of the event loop, with the warm start: the most popular experts resident. Requests
    in the system live in a ring of ``capacity`` (a power of two) slots, request ``r`` in slot ``r % capacity``;
    ``n_out`` > 0 keeps per-request start, finish and first-token times."""
    nq = n_experts + 1
    s = dict(
        s_arr=np.zeros(capacity), s_enq=np.zeros(capacity), s_nxt=np.full(capacity, -1, np.int64),
        s_ttft=np.zeros(capacity), s_exp=np.zeros(capacity, np.int64), s_done=np.ones(capacity, np.bool_),
        head=np.full(nq, -1, np.int64), tail=np.full(nq, -1, np.int64), count=np.zeros(nq, np.int64),
        active=np.empty(nq, np.int64), where=np.full(nq, -1, np.int64), act_h=np.zeros(nq),
        act_n=np.zeros(nq, np.int64), act_res=np.zeros(nq, np.bool_),
        resident=np.zeros(n_experts, np.bool_), res_list=np.empty(n_experts, np.int64),
        res_pos=np.full(n_experts, -1, np.int64), last_use=np.zeros(n_experts), uses=np.zeros(n_experts),
        pinned=np.zeros(n_experts, np.bool_), fresh=np.zeros(n_experts, np.bool_), stats=np.zeros(N_STATS),
        batch=np.empty(max_batch, np.int64), hist=np.zeros((3, HIST_BINS), np.int64),
        lru_prev=np.full(n_experts, -1, np.int64), lru_next=np.full(n_experts, -1, np.int64),
        out=np.full((3, n_out), np.nan),
    )
    n_res = min(slots, n_experts)
    res = np.flatnonzero(popularity_rank < n_res)
    s["resident"][res] = True
    s["res_list"][:res.size] = res
    s["res_pos"][res] = np.arange(res.size)
    if policy == 2:
        keep = n_res if slots >= n_experts else max(slots - 1, 0)
        s["pinned"][:] = popularity_rank < keep
    # floats: t, server_end, copy_end, first arrival, early and end saturation marks, TTFT and TPOT bounds, gen
    s["fs"] = np.array([0.0, np.inf, np.inf, np.nan, np.inf, np.inf, np.inf, np.inf, 0.0])
    s["ints"] = np.zeros(N_INTS, np.int64)
    s["ints"][5:8] = 0, -1, -1
    s["ints"][9] = res.size
    # the LRU list of the resident experts, by (last use, id): all last used at 0, so by id
    s["ints"][12:14] = (res[0], res[-1]) if res.size else (-1, -1)
    s["lru_next"][res[:-1]] = res[1:]
    s["lru_prev"][res[1:]] = res[:-1]
    return s


def _grow(s, need):
    """Double the ring of request slots until it holds ``need`` requests, moving each live request to its slot."""
    old = s["s_arr"].shape[0]
    cap = old
    while cap < need:
        cap *= 2
    low, arrived = int(s["ints"][10]), int(s["ints"][1])
    ids = np.arange(low, arrived)
    src, dst = ids & (old - 1), ids & (cap - 1)
    for key in ("s_arr", "s_enq", "s_nxt", "s_ttft", "s_exp", "s_done"):
        a = s[key]
        b = np.ones(cap, np.bool_) if key == "s_done" else np.full(cap, -1, a.dtype) if key == "s_nxt" else np.zeros(cap, a.dtype)
        b[dst] = a[src]
        s[key] = b


@njit(cache=True)
def _step(c_t, c_e, final, n_experts, slots, policy, max_batch, max_wait, t_router, t_exec, t_ttft, copy_time,
          overlap, s_arr, s_enq, s_nxt, s_ttft, s_exp, s_done, head, tail, count, active, where, act_h, act_n,
          act_res, resident,
          res_list, res_pos, last_use, uses, pinned, fresh, stats, batch, hist, lru_prev, lru_next, out, fs, ints,
          max_events):
    """Up to ``max_events`` events of the loop (queue 0 is the router, queue e + 1 expert e) over the arrivals
    ``c_t``/``c_e`` (times, experts; ``final``: no more follow); the loop's state lives in the arrays and in
    ``fs``/``ints``. Queues link request ids (``s_nxt``), whose data sit in ring slots ``id % capacity``; the
    queues with requests are listed in ``active`` (``where``: a queue's place in the list), and by place in
    the list ``act_h`` (the time its oldest request joined), ``act_n`` (its requests) and ``act_res`` (router
    queue, or its expert resident), the resident experts in ``res_list`` and, by (last use, id), in the LRU list
    (``lru_prev``/``lru_next``) from which LRU and pinned eviction take their victim.
    Returns 0 when it needs the next arrivals, 1 when the simulation is over, 2 after ``max_events`` events,
    3 when the ring has no free slot for the next arrivals."""
    m = c_t.shape[0]
    mask = s_arr.shape[0] - 1
    keep_out = out.shape[1] > 0
    t, server_end, copy_end = fs[0], fs[1], fs[2]
    early_mark, end_mark, ttft_slo, tpot_slo, gen = fs[4], fs[5], fs[6], fs[7], fs[8]
    i_arr, arrived, done, in_system, n_active = ints[0], ints[1], ints[2], ints[3], ints[4]
    batch_len, batch_q, copy_target, ended, low, n_miss = ints[5], ints[6], ints[7], ints[8], ints[10], ints[11]
    # the counters in locals (registers) during the loop, back in ``stats`` at the end
    st_busy, st_copies, st_runs, st_miss, st_area, st_router, st_wasted = stats[1:8]
    st_early, st_end, st_good, st_lat, st_ttft, st_tpot, st_ntpot, st_last = stats[8:16]
    n_res, lru_head, lru_tail = ints[9], ints[12], ints[13]
    events = 0
    status = _PAUSED
    while True:
        if ended == 1 or (final and i_arr >= m and done >= arrived):
            status = _OVER
            break
        if events >= max_events:
            break
        # ---- next event time
        t_next = np.inf
        if i_arr < m:
            t_next = c_t[i_arr]
        if server_end < t_next:
            t_next = server_end
        if copy_end < t_next:
            t_next = copy_end
        if server_end == np.inf:
            for a in range(n_active):
                if act_n[a] < max_batch:
                    d = act_h[a] + max_wait
                    if d > t and d < t_next:
                        t_next = d
        # the arrivals of this event must all be known, and have free slots
        j = i_arr
        while j < m and c_t[j] <= t_next:
            j += 1
        if not final and j >= m:
            status = _NEED_ARRIVALS
            break
        if arrived + (j - i_arr) - low > mask + 1:
            status = _NEED_ROOM
            break
        events += 1
        if t_next == np.inf:
            ended = 1
            continue
        st_area += (t_next - t) * in_system
        t = t_next
        # ---- arrivals
        while i_arr < j:  # (the arrivals at t, counted above)
            r = arrived
            x = r & mask
            s_arr[x] = c_t[i_arr]
            s_enq[x] = c_t[i_arr]
            s_exp[x] = c_e[i_arr]
            s_nxt[x] = -1
            s_done[x] = False
            if count[0] == 0:
                head[0] = r
                where[0] = n_active
                active[n_active] = 0
                act_h[n_active] = c_t[i_arr]
                act_n[n_active] = 0
                act_res[n_active] = True
                n_active += 1
            else:
                s_nxt[tail[0] & mask] = r
            tail[0] = r
            count[0] += 1
            act_n[where[0]] += 1
            in_system += 1
            i_arr += 1
            arrived += 1
        # ---- copy completion
        if copy_end <= t:
            resident[copy_target] = True
            if count[copy_target + 1] > 0:
                n_miss -= 1
                act_res[where[copy_target + 1]] = True
            res_pos[copy_target] = n_res
            res_list[n_res] = copy_target
            n_res += 1
            fresh[copy_target] = True
            last_use[copy_target] = t
            lru_head, lru_tail = _lru_insert(copy_target, t, last_use, lru_prev, lru_next, lru_head, lru_tail)
            copy_end = np.inf
            copy_target = -1
        # ---- batch completion
        if server_end <= t:
            for k in range(batch_len):
                r = batch[k]
                x = r & mask
                if batch_q == 0:
                    q = s_exp[x] + 1
                    s_enq[x] = t
                    s_nxt[x] = -1
                    if count[q] == 0:
                        head[q] = r
                        where[q] = n_active
                        active[n_active] = q
                        act_h[n_active] = t
                        act_n[n_active] = 0
                        act_res[n_active] = resident[q - 1]
                        n_active += 1
                        if not resident[q - 1]:
                            n_miss += 1
                    else:
                        s_nxt[tail[q] & mask] = r
                    tail[q] = r
                    count[q] += 1
                    act_n[where[q]] += 1
                else:
                    done += 1
                    in_system -= 1
                    s_done[x] = True
                    lat = t - s_arr[x]
                    ttft = s_ttft[x] - s_arr[x]
                    st_lat += lat
                    st_ttft += ttft
                    hist[0, _bin(lat)] += 1
                    hist[1, _bin(ttft)] += 1
                    good = ttft <= ttft_slo
                    if gen > 1.0:
                        tpot = (t - s_ttft[x]) / (gen - 1.0)
                        st_tpot += tpot
                        st_ntpot += 1
                        hist[2, _bin(tpot)] += 1
                        good = good and not tpot > tpot_slo
                    if good:
                        st_good += 1
                    if t <= early_mark:
                        st_early += 1
                    if t <= end_mark:
                        st_end += 1
                    if t > st_last:
                        st_last = t
                    if keep_out:
                        out[1, r] = t
            while low < arrived and s_done[low & mask]:
                low += 1
            server_end = np.inf
            batch_len = 0
            batch_q = -1
        # ---- pick the next batch and start copies (a busy server only starts a copy: none without a miss)
        if server_end == np.inf or (overlap and copy_end == np.inf and n_miss > 0):
            best_res = -1
            best_res_t = np.inf if server_end == np.inf else -np.inf  # a busy server looks for a copy only
            best_miss = -1
            best_miss_t = np.inf
            all_in = final and i_arr >= m
            flush = all_in and server_end == np.inf
            for a in range(n_active):
                h = act_h[a]
                res = act_res[a]
                if h >= (best_res_t if res else best_miss_t):
                    continue  # not older than the oldest ready queue of its kind found so far
                if not (act_n[a] >= max_batch or t >= h + max_wait or flush):
                    continue  # not ready
                if res:
                    best_res_t = h
                    best_res = a
                elif active[a] - 1 != copy_target:
                    best_miss_t = h
                    best_miss = a
            # queue ids from places in the list
            best_res = active[best_res] if best_res >= 0 else -1
            best_miss = active[best_miss] if best_miss >= 0 else -1
            # a copy for the oldest ready non-resident expert
            if best_miss >= 0 and copy_end == np.inf and (overlap or server_end == np.inf) and \
                    (best_res < 0 or best_miss_t < best_res_t or overlap):
                e = best_miss - 1
                # evict a victim if HBM is full
                room = slots > 0
                if n_res >= slots and slots > 0:
                    # evict by policy (the lowest key, ties to the lowest id): experts copied in and not yet
                    # run are never evicted; experts with requests waiting are spared while others can go
                    victim = -1
                    for spare_waiting in (True, False):
                        if policy != 1:  # LRU order: the first that may go is the one of the lowest (key, id)
                            x = lru_head
                            while x >= 0:
                                if not ((batch_q > 0 and x == batch_q - 1) or pinned[x] or fresh[x] or
                                        (spare_waiting and count[x + 1] > 0)):
                                    victim = x
                                    break
                                x = lru_next[x]
                            if victim >= 0:
                                break
                            continue
                        # LFU order: the fewest uses, then the least recent use, then the lowest id (compared
                        # in turn: one float key of uses and time would lose the time once uses are many)
                        best_uses = 0.0
                        best_time = 0.0
                        for i in range(n_res):
                            x = res_list[i]
                            if (batch_q > 0 and x == batch_q - 1) or pinned[x] or fresh[x]:
                                continue
                            if spare_waiting and count[x + 1] > 0:
                                continue
                            if victim < 0 or uses[x] < best_uses or (uses[x] == best_uses and (
                                    last_use[x] < best_time or (last_use[x] == best_time and x < victim))):
                                best_uses = uses[x]
                                best_time = last_use[x]
                                victim = x
                        if victim >= 0:
                            break
                    if victim >= 0:
                        resident[victim] = False
                        if count[victim + 1] > 0:
                            n_miss += 1
                            act_res[where[victim + 1]] = False
                        n_res -= 1
                        pos = res_pos[victim]
                        last = res_list[n_res]
                        res_list[pos] = last
                        res_pos[last] = pos
                        res_pos[victim] = -1
                        lru_head, lru_tail = _lru_unlink(victim, lru_prev, lru_next, lru_head, lru_tail)
                        if fresh[victim]:  # copied in and evicted before it ran: a wasted copy
                            st_wasted += 1
                            fresh[victim] = False
                    else:
                        room = False  # every resident expert is running, pinned or waiting for its first run
                if room:
                    copy_target = e
                    copy_end = t + copy_time
                    st_copies += 1
                    if not overlap:
                        server_end = copy_end  # the node waits for the copy
                        batch_len = 0
                        batch_q = -1
            if server_end == np.inf and best_res >= 0:
                q = best_res
                b = min(count[q], max_batch)
                for k in range(b):
                    r = head[q]
                    head[q] = s_nxt[r & mask]
                    batch[k] = r
                count[q] -= b
                if count[q] == 0:
                    tail[q] = -1
                    pos = where[q]
                    n_active -= 1
                    last = active[n_active]
                    active[pos] = last
                    act_h[pos] = act_h[n_active]
                    act_n[pos] = act_n[n_active]
                    act_res[pos] = act_res[n_active]
                    where[last] = pos
                    where[q] = -1
                else:
                    act_h[where[q]] = s_enq[head[q] & mask]
                    act_n[where[q]] = count[q]
                batch_len = b
                batch_q = q
                if q == 0:
                    dur = t_router[b, 0]
                    st_router += 1
                else:
                    e = q - 1
                    dur = t_exec[b, 0]
                    st_runs += 1
                    if fresh[e]:  # the first run since its copy: a miss (once per run)
                        st_miss += 1
                        fresh[e] = False
                    last_use[e] = t
                    if resident[e]:  # (not when the copy decision above has just evicted it: it runs all the same)
                        lru_head, lru_tail = _lru_unlink(e, lru_prev, lru_next, lru_head, lru_tail)
                        lru_head, lru_tail = _lru_insert(e, t, last_use, lru_prev, lru_next, lru_head, lru_tail)
                    uses[e] += 1
                    first = t + t_ttft[b, 0]
                    for k in range(b):
                        s_ttft[batch[k] & mask] = first
                        if keep_out:
                            out[0, batch[k]] = t
                            out[2, batch[k]] = first
                server_end = t + dur
                st_busy += dur
    fs[0], fs[1], fs[2] = t, server_end, copy_end
    ints[0], ints[1], ints[2], ints[3], ints[4] = i_arr, arrived, done, in_system, n_active
    ints[5], ints[6], ints[7], ints[8], ints[10], ints[11] = batch_len, batch_q, copy_target, ended, low, n_miss
    stats[1], stats[2], stats[3], stats[4], stats[5], stats[6], stats[7] = (st_busy, st_copies, st_runs, st_miss, st_area,
                                                                          st_router, st_wasted)
    stats[8], stats[9], stats[10], stats[11] = st_early, st_end, st_good, st_lat
    stats[12], stats[13], stats[14], stats[15] = st_ttft, st_tpot, st_ntpot, st_last
    ints[9], ints[12], ints[13] = n_res, lru_head, lru_tail
    return status


class _Loop:
    """One server's event loop (one device group), fed arrivals in chunks (:meth:`feed`, then :meth:`close`)."""

    def __init__(self, n_experts, slots, policy, popularity_rank, max_batch, max_wait, tables, overlap, gen,
                 ttft_slo_s, tpot_slo_s, n_out=0, use_jit=True, chunk=None, capacity=None):
        self.args = (n_experts, slots, policy, max_batch, max_wait, tables.router, tables.expert,
                     tables.expert_ttft, tables.copy_s, overlap)
        self.s = _new_state(n_experts, slots, policy, popularity_rank, max_batch, capacity or RING_SLOTS, n_out)
        self.s["fs"][6:9] = ttft_slo_s, tpot_slo_s, gen
        self.use_jit, self.chunk = use_jit, chunk
        self.c_t, self.c_e = np.zeros(0), np.zeros(0, np.int64)

    def marks(self, early, end):
        """The times at which :func:`saturation` counts the backlog (finishes at or before them are counted)."""
        self.s["fs"][4:6] = early, end

    def feed(self, times, experts, final=False):
        """Run the loop over the next arrivals (sorted; ``final``: no more follow) until it needs more."""
        if np.isnan(self.s["fs"][3]) and len(times):
            self.s["fs"][3] = times[0]
        left = self.s["ints"][0]
        self.c_t = np.concatenate([self.c_t[left:], np.asarray(times, float)])
        self.c_e = np.concatenate([self.c_e[left:], np.asarray(experts, np.int64)])
        self.s["ints"][0] = 0
        s = self.s
        step = _step if self.use_jit else getattr(_step, "py_func", _step)  # NUMBA_DISABLE_JIT: a plain function
        chunk = CHUNK_EVENTS if self.chunk is None else self.chunk
        while True:
            status = step(self.c_t, self.c_e, final, *self.args, s["s_arr"], s["s_enq"], s["s_nxt"], s["s_ttft"],
                          s["s_exp"], s["s_done"], s["head"], s["tail"], s["count"], s["active"], s["where"],
                          s["act_h"], s["act_n"], s["act_res"], s["resident"], s["res_list"], s["res_pos"],
                          s["last_use"], s["uses"], s["pinned"], s["fresh"], s["stats"], s["batch"], s["hist"],
                          s["lru_prev"], s["lru_next"], s["out"], s["fs"], s["ints"], chunk)
            # back in Python between chunks: a pending KeyboardInterrupt is raised here
            if status == _NEED_ROOM:
                i, j = int(s["ints"][0]), int(s["ints"][0])
                while j < self.c_t.size and self.c_t[j] <= self.c_t[i]:
                    j += 1
                _grow(s, int(s["ints"][1]) - int(s["ints"][10]) + (j - i) + 1)
            elif status in (_NEED_ARRIVALS, _OVER):
                return status


def _run(arrival, expert, loop, marks, use_jit=True, chunk=CHUNK_EVENTS):
    """Run ``loop`` (:class:`_Loop`) over a whole trace (numba, or its pure-Python twin when the loop or
    ``use_jit`` says so), fed in chunks of :data:`FEED_REQUESTS` arrivals, ``chunk`` events per kernel call.
    Returns the loop's state."""
    loop.use_jit = loop.use_jit and use_jit
    loop.chunk = chunk
    loop.marks(*marks)
    n = arrival.shape[0]
    for a in range(0, n, FEED_REQUESTS):
        b = min(n, a + FEED_REQUESTS)
        loop.feed(arrival[a:b], expert[a:b], final=b >= n)
    return loop.s


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


def light_load_floor(platform: str, experts: int, max_wait_s: float = 0.05, prompt: int = 128, gen: int = GEN_TOKENS,
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


def _check_poisson(rate, requests, experts, locality, seed, max_requests):
    requests = whole("requests", requests, 1, max_requests, "requests of one run")
    rate = number("rate", rate, 0, above=True, what="requests per second")
    if requests / rate > MAX_TIME_S:
        raise ConfigError("rate", rate, f"at least {requests / MAX_TIME_S:g} requests/s: {requests:,} requests must "
                          f"arrive within {MAX_TIME_S:g} s, where times still resolve microseconds")
    locality = number("locality", locality, 0, 1, below=True, what="probability of repeating the previous expert")
    return requests, rate, locality, whole("seed", seed, 0), whole("experts", experts, 1, MAX_EXPERTS)


def poisson_chunks(rate: float, requests: int, experts: int, skew: float = 0.0, locality: float = 0.0,
                   seed: int = 0, weights=None, chunk: int = FEED_REQUESTS):
    """:func:`poisson_requests` generated ``chunk`` requests at a time: yields ``(arrival_s, expert)`` arrays,
    together the same numbers as :func:`poisson_requests` (the random stream is read in the same order: a
    first pass over the inter-arrival draws finds where the expert draws start). Up to
    :data:`MAX_STREAM_REQUESTS` requests, in memory of ``chunk``."""
    requests, rate, locality, seed, experts = _check_poisson(rate, requests, experts, locality, seed,
                                                             MAX_STREAM_REQUESTS)
    p = zipf_popularity(experts, skew) if weights is None else _weights("weights", weights, experts)
    rng = np.random.default_rng(seed)
    start = rng.bit_generator.state
    for a in range(0, requests, chunk):
        rng.exponential(1.0 / rate, min(chunk, requests - a))
    picks_at = rng.bit_generator.state
    if locality > 0:
        for a in range(0, requests, chunk):
            rng.random(min(chunk, requests - a))
    repeat_at = rng.bit_generator.state
    gaps, picks, repeats = (np.random.default_rng(seed) for _ in range(3))
    for g, state in ((gaps, start), (picks, picks_at), (repeats, repeat_at)):
        g.bit_generator.state = state
    # Generator.choice(experts, k, p=p) is cdf.searchsorted(random(k), side="right"): the same numbers, faster
    cdf = choice_cdf(p)
    guide = guide_table(cdf)
    carry, last = 0.0, -1
    for a in range(0, requests, chunk):
        k = min(chunk, requests - a)
        arrival = running_sum(carry, gaps.exponential(1.0 / rate, k), np.empty(k))  # as one cumsum of all gaps
        carry = arrival[-1]
        ids = pick_by_cdf(picks.random(k), cdf, guide, np.empty(k, np.int64))
        if locality > 0:
            rep = repeats.random(k) < locality
            if a == 0:
                rep[0] = False  # the first request repeats nothing
            ids = np.concatenate([[last], ids])
            keep = np.where(np.concatenate([[True], ~rep]), np.arange(k + 1), 0)
            ids = ids[np.maximum.accumulate(keep)][1:]
        last = ids[-1]
        yield arrival, ids


def poisson_requests(rate: float, requests: int, experts: int, skew: float = 0.0, locality: float = 0.0,
                     seed: int = 0, weights=None) -> pd.DataFrame:
    """Synthetic trace: Poisson arrivals at ``rate``/s, experts drawn from Zipf(``skew``) or ``weights``;
    with ``locality`` in [0, 1) a request repeats the previous request's expert with that probability
    (bursts of the same expert). At most :data:`MAX_REQUESTS` (a table in memory; :func:`simulate_poisson`
    streams longer runs)."""
    requests = _check_poisson(rate, requests, experts, locality, seed, MAX_REQUESTS)[0]
    parts = list(poisson_chunks(rate, requests, experts, skew, locality, seed, weights, chunk=max(requests, 1)))
    return pd.DataFrame({"arrival_s": parts[0][0], "expert": parts[0][1]})


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
    _checked_columns(trace, experts, where)


def _checked_columns(trace: pd.DataFrame, experts: int, where: str = "trace") -> tuple[np.ndarray, np.ndarray]:
    """:func:`check_trace`, returning the checked ``(arrival_s, expert)`` as float64 and int64 arrays (read-only
    use: they may be the trace's own memory)."""
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
    if not (arrival.min() >= 0 and arrival.max() <= MAX_TIME_S):  # (NaN fails both) find the first bad row
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arrival) | (arrival < 0) | (arrival > MAX_TIME_S)
        i = int(np.argmax(bad))
        raise ConfigError(f"{where} row {i}: arrival_s", trace["arrival_s"].iloc[i],
                          f"a finite time in seconds from 0 to {MAX_TIME_S:g}")
    column = trace["expert"]
    whole_ids = isinstance(column.dtype, np.dtype) and column.dtype.kind in ("i", "u")
    ids = column.to_numpy() if whole_ids else _numbers(column)
    if not (whole_ids and ids.min() >= 0 and ids.max() <= experts - 1):
        ids = ids.astype(float)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(ids) | (ids < 0) | (ids > experts - 1) | (ids != np.round(ids))
        if bad.any():
            i = int(np.argmax(bad))
            raise ConfigError(f"{where} row {i}: expert", column.iloc[i], f"a whole expert id from 0 to {experts - 1}")
    return arrival, ids.astype(np.int64, copy=False)


def _numbers(column: pd.Series) -> np.ndarray:
    """A trace column as float64 (NaN where a value is missing, not a number, or a boolean). A plain float64
    column is returned as it is (no copy), a plain integer column converted directly."""
    kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else ""
    if kind == "f" and column.dtype.itemsize == 8:
        return column.to_numpy()
    if kind in ("i", "u"):
        return column.to_numpy().astype(float)
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
    early_t, end_t = saturation_marks(arrival)
    return saturation_counts(n, float(arrival[0]) if n else 0.0, float(arrival[-1]) if n else 0.0,
                             int(np.count_nonzero(finish <= early_t)), int(np.count_nonzero(finish <= end_t)), busy)


def saturation_marks(arrival: np.ndarray) -> tuple[float, float]:
    """The two times at which :func:`saturation` counts the backlog: the arrival of the first fifth of the
    requests, and the last arrival."""
    n = arrival.shape[0]
    return (float(arrival[n // 5]), float(arrival[-1])) if n else (np.inf, np.inf)


def saturation_counts(n: int, first: float, last: float, done_early: int, done_end: int,
                      busy: float = 0.0) -> tuple[float, bool]:
    """:func:`saturation` from counts: ``n`` requests arriving from ``first`` to ``last``, of which ``done_early``
    and ``done_end`` finished by the two marks of :func:`saturation_marks` (a streamed run counts them)."""
    span = last - first if n > 1 else 0.0
    offered = (n - 1) / span if span > 0 else float("nan")
    grew = False
    if n >= 10:
        grew = n - done_end > SATURATION_GROWTH * (n // 5 + 1 - done_early) + SATURATION_SLACK
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
             max_wait_s: float = 0.05, prompt: int = 128, gen: int = GEN_TOKENS, profile: str = "paper",
             overlap: bool = True, popularity=None, dep=None, use_jit: bool = True,
             per_request: bool = True, groups: int = 1, ttft_slo_s: float = 1.0,
             tpot_slo_s: float = 0.1) -> tuple[dict, pd.DataFrame]:
    """Serve ``trace`` (sorted by arrival) on ``platform``; returns (summary, per-request frame; empty with
    ``per_request=False``, which saves building it). The summary has TTFT, TPOT and end-to-end latency
    percentiles in ms (as :mod:`rdusim.scenarios.serve_model`) and goodput: requests/s within both
    ``ttft_slo_s`` and ``tpot_slo_s``. Percentiles are read from streaming histograms, within
    :data:`HIST_RESOLUTION` (0.049%) of the exact ones; means, counts and rates are exact.

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
    run = _Deployment(platform, experts, policy, max_batch, max_wait_s, prompt, gen, profile, overlap, popularity,
                      dep, use_jit, groups, ttft_slo_s, tpot_slo_s)
    arrival, expert = _checked_columns(trace, run.experts)
    if run.failed:
        return run.failed, pd.DataFrame()
    if np.any(arrival[1:] < arrival[:-1]):
        raise ConfigError("trace arrival_s", "unsorted", "arrival times in ascending order (read_trace sorts a file)")
    n = len(trace)
    out = np.full((3, n if per_request else 0), np.nan)
    marks = saturation_marks(arrival)
    for g, loop in enumerate(run.loops(n if per_request else 0)):
        mine = np.flatnonzero(run.group_of[expert] == g) if groups > 1 else slice(None)
        times = arrival[mine]
        if times.size == 0:
            continue
        st = _run(times, run.local[expert[mine]] if groups > 1 else expert, loop, marks)
        if per_request:
            out[:, mine] = st["out"][:, :times.size]
    frame = pd.DataFrame({"arrival_s": arrival, "expert": expert, "start_s": out[0], "finish_s": out[1],
                          "ttft_s": out[2] - arrival, "latency_s": out[1] - arrival}) if per_request else pd.DataFrame()
    return run.summary(n, float(arrival[0]), float(arrival[-1])), frame


def simulate_poisson(platform: str, experts: int, rate: float, requests: int, skew: float = 0.0,
                     locality: float = 0.0, seed: int = 0, policy: str = "lru", max_batch: int = 8,
                     max_wait_s: float = 0.05, prompt: int = 128, gen: int = GEN_TOKENS, profile: str = "paper",
                     overlap: bool = True, popularity=None, dep=None, use_jit: bool = True, groups: int = 1,
                     ttft_slo_s: float = 1.0, tpot_slo_s: float = 0.1, chunk: int = FEED_REQUESTS) -> dict:
    """:func:`simulate` of :func:`poisson_requests` (``rate``, ``requests``, ``skew``, ``locality``, ``seed``;
    popularity Zipf(``skew``) unless given), streamed: the arrivals are generated ``chunk`` at a time and fed
    to the loop, and the summary is kept in histograms, so memory does not grow with ``requests`` (only with
    the requests in the system at once). The summary is the one :func:`simulate` returns for that trace."""
    requests, rate, locality, seed, experts = _check_poisson(rate, requests, experts, locality, seed,
                                                             MAX_STREAM_REQUESTS)
    pop = zipf_popularity(experts, skew) if popularity is None else popularity
    run = _Deployment(platform, experts, policy, max_batch, max_wait_s, prompt, gen, profile, overlap, pop,
                      dep, use_jit, groups, ttft_slo_s, tpot_slo_s)
    if run.failed:
        return run.failed
    loops = run.loops(0)
    early_i = requests // 5
    first = last = None
    for a, (arrival, expert) in zip(range(0, requests, chunk),
                                    poisson_chunks(rate, requests, experts, skew, locality, seed, chunk=chunk)):
        first = arrival[0] if first is None else first
        final = a + arrival.size >= requests
        early = arrival[early_i - a] if a <= early_i < a + arrival.size else None
        for g, loop in enumerate(loops):
            if early is not None:
                loop.marks(early, np.inf)
            if final:
                loop.marks(loop.s["fs"][4], arrival[-1])
            if groups > 1:
                mine = run.group_of[expert] == g
                loop.feed(arrival[mine], run.local[expert[mine]], final=final)
            else:  # one group: experts keep their ids
                loop.feed(arrival, expert, final=final)
        last = arrival[-1]
    return run.summary(requests, float(first), float(last))


class _Deployment:
    """A checked CoE deployment (:func:`simulate`'s arguments): its device groups' loops and the summary."""

    def __init__(self, platform, experts, policy, max_batch, max_wait_s, prompt, gen, profile, overlap, popularity,
                 dep, use_jit, groups, ttft_slo_s, tpot_slo_s):
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
        devices = load_platform(platform).devices
        groups = whole("groups", groups, 1, devices)
        if devices % groups:
            raise ConfigError("groups", groups, f"a divisor of the {devices} devices of {platform}")
        p = zipf_popularity(experts, 0.0) if popularity is None else _weights("popularity", popularity, experts)
        self.platform, self.experts, self.policy, self.groups, self.gen, self.dep = platform, experts, policy, groups, gen, dep
        self.settings = (max_batch, max_wait_s, overlap, ttft_slo_s, tpot_slo_s, use_jit)
        self.failed = None
        tables = service_tables(platform, experts, max_batch, prompt, gen, profile, dep)
        if experts > tables.max_experts:
            self.failed = {"platform": platform, "experts": experts, "fits": False,
                           "reason": f"{experts} experts > {tables.max_experts} that fit"}
            return
        if tables.reason:
            self.failed = {"platform": platform, "experts": experts, "fits": False, "reason": tables.reason}
            return
        self.placed = _group_tables(platform, experts, max_batch, prompt, gen, profile, dep, groups)
        if self.placed[0][1].reason:
            self.failed = {"platform": platform, "experts": experts, "fits": False,
                           "reason": f"groups of {devices // groups} devices: {self.placed[0][1].reason}"}
            return
        rank = np.empty(experts, np.int64)
        rank[np.argsort(-p, kind="stable")] = np.arange(experts)
        self.rank = rank
        self.group_of = rank % groups  # experts of group g, renumbered 0.. in id order
        self.local = np.zeros(experts, np.int64)
        for g in range(groups):
            hosted = self.group_of == g
            self.local[hosted] = np.arange(int(hosted.sum()))

    def loops(self, n_out: int) -> list:
        """One event loop per device group (``n_out`` > 0: each keeps per-request times for that many)."""
        max_batch, max_wait_s, overlap, ttft_slo_s, tpot_slo_s, use_jit = self.settings
        self._loops = []
        for g, (slots, tab) in enumerate(self.placed):
            hosted = self.group_of == g
            sub_rank = np.empty(int(hosted.sum()), np.int64)
            sub_rank[np.argsort(self.rank[hosted], kind="stable")] = np.arange(sub_rank.size)
            self._loops.append(_Loop(int(hosted.sum()), slots, _POLICY_CODE[self.policy], sub_rank, max_batch,
                                     max_wait_s, tab, overlap, self.gen, ttft_slo_s, tpot_slo_s, n_out, use_jit))
        return self._loops

    def summary(self, n: int, first: float, last: float) -> dict:
        """The run's summary from its loops' counters and histograms (see :func:`simulate`)."""
        states = [lp.s for lp in self._loops]
        stats = np.sum([st["stats"] for st in states], axis=0)
        hist = np.sum([st["hist"] for st in states], axis=0)
        done = sum(int(st["ints"][2]) for st in states)
        makespan = max(st["stats"][15] for st in states) - first
        stats[1] /= self.groups  # busy: the mean over groups
        if done < n or not makespan > 0:
            return {"platform": self.platform, "experts": self.experts, "fits": False,
                    "reason": "the simulation left requests unserved or times unresolved"}
        offered, saturated = saturation_counts(n, first, last, int(stats[8]), int(stats[9]), stats[1] / makespan)
        p50, p90, p95, p99 = hist_percentiles(hist[0], [50, 90, 95, 99])
        mean = stats[11] / n
        pct = {}
        for k, name in ((1, "ttft"), (2, "tpot")):
            counted = stats[14] if k == 2 else n
            pct[f"{name}_ms_mean"] = stats[11 + k] / counted * 1e3 if counted else float("nan")
            pct.update({f"{name}_ms_p{q}": v * 1e3 for q, v in zip(PERCENTILES, hist_percentiles(hist[k], PERCENTILES))})
        return {
            "platform": self.platform, "experts": self.experts, "policy": self.policy, "fits": True, "reason": "",
            "requests": n, "p50_s": p50, "p95_s": p95, "p99_s": p99, "mean_s": mean,
            "mean_ttft_s": stats[12] / n,
            "throughput_rps": n / makespan,
            "switches_per_s": stats[2] / makespan,
            # a rate and a share: within [0, 1] by definition (guards; the counts themselves are the loop's)
            "hbm_hit_rate": min(1.0, max(0.0, 1.0 - stats[4] / stats[3])) if stats[3] else 1.0,
            "utilisation": min(1.0, max(0.0, stats[1] / makespan)),
            "mean_in_system": stats[5] / makespan,
            "expert_batches": int(stats[3]), "copies": int(stats[4]), "copies_started": int(stats[2]),
            "wasted_copies": int(stats[7]), "wasted_copy_bytes": float(stats[7] * self.dep.expert_bytes),
            "slots": sum(sl for sl, _ in self.placed),
            "groups": self.groups, "tp": load_platform(self.platform).devices // self.groups,
            "offered_rps": offered, "saturated": bool(saturated),
            **pct,
            "e2e_ms_mean": mean * 1e3, "e2e_ms_p50": p50 * 1e3, "e2e_ms_p90": p90 * 1e3, "e2e_ms_p99": p99 * 1e3,
            "ttft_slo_ms": self.settings[3] * 1e3, "tpot_slo_ms": self.settings[4] * 1e3,
            "goodput_rps": float(stats[10]) / makespan, "slo_attainment": float(stats[10]) / n,
        }
