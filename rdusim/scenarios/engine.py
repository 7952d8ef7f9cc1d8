"""Iteration-level (continuous) batching of one model instance: the serving engine of ``rdusim serve --model``.

Model (issue 22), after Orca (Yu et al., OSDI 2022), vLLM (Kwon et al., SOSP 2023) and Sarathi-Serve
(Agrawal et al., OSDI 2024):

* An instance (``tp`` devices) keeps a running batch of at most ``max_num_seqs`` sequences. Arrived
  requests wait in a FIFO queue and join the batch at the next step (iteration), when the KV cache has
  room for their whole prompt and output: the cache is bounded by the memory left after weights and
  each admitted request reserves ``prompt + gen`` tokens (TensorRT-LLM's GUARANTEED_NO_EVICT capacity
  scheduler), so requests **wait** when it is full and are never preempted. A request whose
  ``prompt + gen`` alone exceeds the cache (or the model's context window) is rejected.
* Scheduling policies (:data:`POLICIES`):
  ``prefill-first`` (vLLM's default scheduler): a step that admits requests runs their whole prompts
  (at most ``prefill_token_budget`` tokens) and pauses the running decodes; otherwise a step decodes
  one token of every running sequence. ``chunked`` (Sarathi-Serve's chunked prefill): each step
  takes one decode token of every running sequence, then fills the rest of ``chunk_token_budget``
  with prompt chunks (unfinished prompts first, then new requests). ``inflight`` (TensorRT-LLM's
  in-flight batching with its default ``enable_chunked_context = False``): each step takes one decode
  token of every running sequence and whole prompts of waiting requests while decode and prompt tokens
  stay within the token budget (``max_num_tokens``); a prompt is never split, and one longer than the
  whole budget (which TensorRT-LLM would refuse without chunking) runs as the only prompt of a step. ``static``: the article-era
  batching: a batch of up to ``max_batch`` requests starts when that many wait or the oldest has
  waited ``max_wait_s``, and runs to its last token before the next batch is admitted.
* A step's time comes from ``rdusim predict``'s per-step cost (:func:`rdusim.scenarios.predict.step_times`),
  tabulated once per batch size (exact) and at :data:`context grid points <load_engine_settings>`
  of context (linear in between, where predict's costs are linear): a decode step of ``b`` sequences
  at their mean context; a prompt pass of ``k`` whole prompts at their mean length; a prompt chunk of
  ``l`` tokens after ``o`` already in the cache as ``l / (o + l)`` of a prompt pass of ``o + l`` tokens
  (exact for the linear layers and for attention); the new requests' first chunks of a step as one prompt
  pass of that many prompts. A step that mixes prompt tokens and decodes (``chunked``, ``inflight``) is one
  fused pass, as engines run it (:func:`_mixed`): the prompt pass, plus the decodes' attention over their
  cache and their tokens' share of the linear layers (read off the decode table at context 1), the weights
  read once. Weights or a KV cache in
  another format than BF16 (``precision``, ``kv_precision``: ``rdusim/data/precisions.yaml``) take their
  per-step costs from ``predict``'s closed form for those rows (:func:`rdusim.scenarios.closed_form.pass_cost`,
  GPU platforms), and their KV cache holds the tokens that format's bytes leave room for.
* Arrivals: open loop (each request at its ``arrival`` time), or closed loop (``closed = N``): N requests
  in flight from the start, and each finished request lets the next one in at that moment (no think time),
  as a benchmark client with a fixed concurrency does (genai-perf/AIPerf ``--concurrency``, vLLM's
  ``--max-concurrency``); the kernel writes the arrival times it gave them into ``arrival``.

The numba kernel :func:`_engine` runs the loop in chunks of :data:`CHUNK_STEPS` steps (Ctrl-C stops
between chunks); ``_engine.py_func`` (``use_jit=False``) is its pure-Python twin, compared in the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from benchmarks.models import get_model
from rdusim.core.errors import ConfigError
from rdusim.core.jit import njit
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import load_platform
from rdusim.core.precision import DEFAULT_PRECISION
from rdusim.core.stacks import BATCHING_POLICIES, load_stack
from rdusim.scenarios.closed_form import arch_of, check_closed_form, gpu_dense_pass_times, pass_cost, place
from rdusim.scenarios.extended import device_bytes
from rdusim.scenarios.predict import clears_with_gpu_constants, memory_need, step_times

POLICIES = BATCHING_POLICIES  # the kernel numbers them in this order
_POLICY_CODE = {p: i for i, p in enumerate(POLICIES)}
CHUNK_STEPS = 100_000
# stats: busy time, steps, prefill steps (steps with prompt tokens), output tokens, sum of batch x step
# time (time-average batch), largest running batch, largest KV tokens reserved, end time
N_STATS = 8


@lru_cache(maxsize=1)
def load_engine_settings() -> dict:
    """The engine's published defaults (``rdusim/data/serving_engine.yaml``; each an ``input``)."""
    return mapping("serving engine", load_yaml(DATA_DIR / "serving_engine.yaml", "serving engine"),
                   "a mapping of engine settings", optional=False)


@dataclass(frozen=True)
class StepCosts:
    """Per-step times (s): ``prefill[k, j]`` a prompt pass of ``k`` prompts of ``1 + j * ctx_step`` tokens,
    ``decode[b, j]`` a decode step of ``b`` sequences at that context; row 0 unused. ``kv_tokens``: the
    KV-cache tokens an instance holds beside its weights (0 or less: the weights do not fit)."""

    prefill: np.ndarray
    decode: np.ndarray
    ctx_step: float
    kv_tokens: int
    window: int
    weights_bytes: float
    capacity_bytes: float


def kv_capacity_tokens(platform: str, model: str, tp: int, fraction: float, precision: str = DEFAULT_PRECISION,
                       kv_precision: str = DEFAULT_PRECISION) -> tuple[int, float, float]:
    """``(tokens, weights, capacity)``: KV-cache tokens one instance of ``tp`` devices holds in ``fraction``
    of its memory after the weights (per device: :func:`~rdusim.scenarios.predict_light.memory_need`, or
    :func:`~rdusim.scenarios.extended.device_bytes` for other formats than BF16; on an SN40L the KV cache
    lives in HBM, weights in the rest of HBM and DDR)."""
    p = load_platform(platform)
    if precision == DEFAULT_PRECISION and kv_precision == DEFAULT_PRECISION:
        weights, kv_one, capacity = memory_need(platform, model, tp, 1, 1, 0)
    else:
        weights = device_bytes(platform, model, tp, precision, kv_precision, 0, 0)
        kv_one = device_bytes(platform, model, tp, precision, kv_precision, 1, 1) - weights
        capacity = p.dev("hbm_capacity") + (p.device.get("ddr_capacity", 0.0) if p.kind == "rdu" else 0.0)
    per_token = float(kv_one)
    if p.kind == "rdu":
        hbm = p.dev("hbm_capacity")
        room = min(fraction * hbm, fraction * capacity - weights)
    else:
        room = fraction * capacity - weights
    return int(room // per_token) if room > 0 else 0, float(weights), float(capacity)


def step_costs(platform: str, model: str, tp: int, execution: str | None = None, max_num_seqs: int | None = None,
               fraction: float | None = None, grid: int | None = None, stack: str | None = None,
               precision: str = DEFAULT_PRECISION, kv_precision: str = DEFAULT_PRECISION) -> StepCosts:
    """Tabulated per-step costs of ``model`` on ``tp`` devices of ``platform`` under a serving ``stack``
    (default: the platform's), weights in ``precision`` and the KV cache in ``kv_precision`` (see the
    module docstring); ``max_num_seqs``, ``fraction`` (of memory for weights and KV cache) and ``grid``
    (context points) default to the engine settings (:func:`load_engine_settings`)."""
    s = load_engine_settings()
    max_num_seqs = s["max_num_seqs"] if max_num_seqs is None else max_num_seqs
    fraction = s["kv_memory_fraction"] if fraction is None else fraction
    grid = s["context_grid_points"] if grid is None else grid
    return _step_costs(platform, model, int(tp), execution, int(max_num_seqs), float(fraction), int(grid), stack,
                       str(precision), str(kv_precision))


def closed_form_step_times(platform: str, model: str, tp: int, execution: str | None, batch, seq, stack: str | None,
                           precision: str, kv_prec: str) -> tuple[np.ndarray, np.ndarray]:
    """``(prefill_s, decode_s)`` as :func:`~rdusim.scenarios.predict.step_times`, for weights in ``precision``
    and a KV cache in ``kv_prec``: ``predict``'s closed form for such rows (a prompt pass of ``batch[i]``
    prompts of ``seq[i]`` tokens, a decode step of ``batch[i]`` sequences at context ``seq[i]``; GPU only)."""
    if load_platform(platform).kind != "gpu":
        raise ConfigError("precision", f"{precision} weights, {kv_prec} KV cache",
                          "bf16 and bf16 when serving on an SN40L platform (other formats: GPU platforms)")
    mode, used = check_closed_form(platform, model, tp, execution, precision, kv_prec, stack)
    s = load_stack(used)
    if not arch_of(model).experts:  # a dense model: the array form of the same pass costs
        return (gpu_dense_pass_times(platform, model, tp, mode, precision, kv_prec, seq, batch, seq, s),
                gpu_dense_pass_times(platform, model, tp, mode, precision, kv_prec, 1, batch, seq, s))
    placement = place(platform, arch_of(model), tp, precision, kv_prec, 1, 1)
    pre = np.array([pass_cost(platform, model, tp, mode, precision, kv_prec, int(c), int(b), int(c), placement, stack=s).time_s
                    for b, c in zip(batch, seq)])
    dec = np.array([pass_cost(platform, model, tp, mode, precision, kv_prec, 1, int(b), int(c), placement, stack=s).time_s
                    for b, c in zip(batch, seq)])
    return pre, dec


@clears_with_gpu_constants
@lru_cache(maxsize=64)
def _step_costs(platform, model, tp, execution, max_num_seqs, fraction, grid, stack, precision, kv_prec) -> StepCosts:
    window = get_model(model).context_window or 32768
    step = (window - 1) / (grid - 1)
    ctx = np.rint(1 + step * np.arange(grid)).astype(np.int64)
    b = np.repeat(np.arange(1, max_num_seqs + 1), grid)
    c = np.tile(ctx, max_num_seqs)
    if precision == DEFAULT_PRECISION and kv_prec == DEFAULT_PRECISION:
        pre, dec = step_times(platform, model, tp, execution, b, c, stack)
    else:
        pre, dec = closed_form_step_times(platform, model, tp, execution, b, c, stack, precision, kv_prec)
    prefill = np.vstack([np.full(grid, np.nan), pre.reshape(max_num_seqs, grid)])
    decode = np.vstack([np.full(grid, np.nan), dec.reshape(max_num_seqs, grid)])
    for table in (prefill, decode):  # SN40L passes that do not place: the last placed cost, scaled by context
        for r in range(1, table.shape[0]):
            row = table[r]
            ok = np.isfinite(row)
            if not ok.all() and ok.any():
                last = int(np.flatnonzero(ok)[-1])
                row[last + 1:] = row[last] * ctx[last + 1:] / ctx[last]
    kv, weights, capacity = kv_capacity_tokens(platform, model, tp, fraction, precision, kv_prec)
    return StepCosts(prefill, decode, float(step), kv, window, weights, capacity)


@njit(cache=True)
def _lookup(table, b, c, ctx_step):
    """``table[b]`` at context ``c``: linear between grid points (beyond the last: the last segment's slope)."""
    x = (c - 1.0) / ctx_step
    j = int(x)
    n = table.shape[1]
    if j > n - 2:
        j = n - 2
    if j < 0:
        j = 0
    f = x - j
    return table[b, j] * (1.0 - f) + table[b, j + 1] * f


@njit(cache=True)
def _decode_context(prompt, run_id, run_gen, n_run):
    """The summed context (prompt + tokens so far) of the first ``n_run`` running sequences."""
    ctx = 0.0
    for k in range(n_run):
        ctx += prompt[run_id[k]] + run_gen[k]
    return ctx


@njit(cache=True)
def _linear(dec, m, ctx_step):
    """The context-free part of a pass of ``m`` tokens (its linear layers, head and per-sequence work): a decode
    step of ``m`` sequences at context 1; beyond the table's largest batch, its slope over the upper half."""
    top = dec.shape[0] - 1
    if m <= top:
        return _lookup(dec, m, 1.0, ctx_step)
    half = max(1, top // 2)
    hi = _lookup(dec, top, 1.0, ctx_step)
    lo = _lookup(dec, half, 1.0, ctx_step)
    return hi + (hi - lo) / max(1, top - half) * (m - top)


@njit(cache=True)
def _mixed(prompt_s, prompt_tokens, dec, b_dec, ctx, ctx_step):
    """One fused step of a prompt pass (``prompt_s``, ``prompt_tokens`` tokens) and ``b_dec`` decoding sequences
    at mean context ``ctx``: the prompt pass, plus the decodes' attention over their cache (their step at
    ``ctx`` less at context 1) and their tokens' share of the linear layers (the context-free pass of
    ``prompt_tokens + b_dec`` tokens less that of ``prompt_tokens``); the weights are read once, as engines
    run a mixed batch in one forward pass. Either part alone is its own pass."""
    if b_dec <= 0:
        return prompt_s
    decode_s = _lookup(dec, b_dec, ctx, ctx_step)
    if prompt_tokens <= 0:
        return decode_s
    attention = decode_s - _lookup(dec, b_dec, 1.0, ctx_step)
    share = _linear(dec, prompt_tokens + b_dec, ctx_step) - _linear(dec, prompt_tokens, ctx_step)
    return prompt_s + max(0.0, attention) + max(0.0, share)


@njit(cache=True)
def _engine(arrival, prompt, gen, policy, max_seqs, budget, kv_cap, max_batch, max_wait, pre, dec, ctx_step,
            first, finish, run_id, run_pre, run_gen, fs, ints, stats, max_steps, closed):
    """Up to ``max_steps`` steps of one instance (see the module docstring); state in ``fs`` (t) and ``ints``
    (next request to admit, running, done, KV tokens reserved, next request to let in under a closed loop).
    ``closed > 0``: a closed loop (``arrival[ints[4]:]`` are set as requests finish). Returns True when every
    request is done."""
    n = arrival.shape[0]
    t = fs[0]
    w, n_run, done, kv_used, nxt = ints[0], ints[1], ints[2], ints[3], ints[4]
    steps = 0
    while done < n and steps < max_steps:
        steps += 1
        if n_run == 0:  # idle: jump to the next arrival (static: to the moment its batch is ready)
            if arrival[w] > t:
                t = arrival[w]
            if policy == 2:
                ready = arrival[w] + max_wait
                if w + max_batch - 1 < n and arrival[w + max_batch - 1] < ready:
                    ready = arrival[w + max_batch - 1]
                if ready > t:
                    t = ready
        dur = 0.0
        admitted = 0
        if policy == 0 or (policy == 2 and n_run == 0):
            tokens = 0
            limit = max_seqs if policy == 0 else max_batch
            while w < n and arrival[w] <= t and n_run < limit and kv_used + prompt[w] + gen[w] <= kv_cap \
                    and (policy == 2 or tokens + prompt[w] <= budget):
                run_id[n_run] = w
                run_pre[n_run] = prompt[w]
                run_gen[n_run] = -1  # marks a prompt run in this step
                kv_used += prompt[w] + gen[w]
                tokens += prompt[w]
                n_run += 1
                admitted += 1
                w += 1
            if admitted > 0:
                dur = _lookup(pre, admitted, tokens / admitted, ctx_step)
                stats[2] += 1
        if policy == 3:  # in-flight batching: every running sequence decodes, whole prompts join within the budget
            b_dec = n_run
            ctx = _decode_context(prompt, run_id, run_gen, n_run)
            tokens = 0
            while w < n and arrival[w] <= t and n_run < max_seqs and kv_used + prompt[w] + gen[w] <= kv_cap \
                    and (b_dec + tokens + prompt[w] <= budget or (admitted == 0 and prompt[w] > budget)):
                run_id[n_run] = w
                run_pre[n_run] = prompt[w]
                run_gen[n_run] = -1
                kv_used += prompt[w] + gen[w]
                tokens += prompt[w]
                n_run += 1
                admitted += 1
                w += 1
            prompt_s = 0.0
            if admitted > 0:
                prompt_s = _lookup(pre, admitted, tokens / admitted, ctx_step)
                stats[2] += 1
            dur = _mixed(prompt_s, tokens, dec, b_dec, ctx / b_dec if b_dec > 0 else 1.0, ctx_step)
            if dur == 0.0:  # nothing could run: wait for the next arrival
                if w < n and arrival[w] > t:
                    t = arrival[w]
                continue
        if admitted == 0 and (policy == 0 or policy == 2):  # a decode step of the whole running batch
            ctx = _decode_context(prompt, run_id, run_gen, n_run)
            dur = _lookup(dec, n_run, ctx / n_run, ctx_step)
        if policy == 1:  # chunked prefill: decode tokens first, then prompt chunks within the budget
            left = budget
            b_dec = 0
            ctx = 0.0
            for k in range(n_run):
                if run_pre[k] >= prompt[run_id[k]]:
                    b_dec += 1
                    ctx += prompt[run_id[k]] + run_gen[k]
            left -= b_dec
            chunk_s = 0.0
            chunk_tokens = 0
            for k in range(n_run):
                if left <= 0:
                    break
                r = run_id[k]
                if run_pre[k] < prompt[r]:
                    take = min(prompt[r] - run_pre[k], left)
                    o = run_pre[k]
                    chunk_s += _lookup(pre, 1, o + take, ctx_step) * take / (o + take)
                    chunk_tokens += take
                    run_pre[k] += take
                    left -= take
                    if run_pre[k] >= prompt[r]:
                        run_gen[k] = -1
            new_chunks = 0
            new_tokens = 0
            while left > 0 and w < n and arrival[w] <= t and n_run < max_seqs and kv_used + prompt[w] + gen[w] <= kv_cap:
                take = min(prompt[w], left)
                new_chunks += 1
                new_tokens += take
                run_id[n_run] = w
                run_pre[n_run] = take
                run_gen[n_run] = -1 if take >= prompt[w] else 0
                kv_used += prompt[w] + gen[w]
                left -= take
                n_run += 1
                w += 1
            if new_chunks > 0:  # the new requests' first chunks: one pass of that many prompts
                chunk_s += _lookup(pre, new_chunks, new_tokens / new_chunks, ctx_step)
                chunk_tokens += new_tokens
            if chunk_s > 0.0:
                stats[2] += 1
            dur = _mixed(chunk_s, chunk_tokens, dec, b_dec, ctx / b_dec if b_dec > 0 else 1.0, ctx_step)
            if dur == 0.0:  # nothing could run: wait for the next arrival (the cache is never full while idle)
                if w < n and arrival[w] > t:
                    t = arrival[w]
                continue
        if kv_used > stats[6]:
            stats[6] = kv_used
        if n_run > stats[5]:
            stats[5] = n_run
        stats[4] += n_run * dur
        t += dur
        stats[0] += dur
        stats[1] += 1
        # tokens out: a finished prompt yields the first token; a decoding sequence one more
        k = 0
        while k < n_run:
            r = run_id[k]
            emitted = False
            if run_gen[k] == -1:
                run_gen[k] = 1
                first[r] = t
                emitted = True
            elif run_pre[k] >= prompt[r] and (policy == 1 or policy == 3 or admitted == 0):
                run_gen[k] += 1
                emitted = True
            if emitted:
                stats[3] += 1
            if emitted and run_gen[k] >= gen[r]:
                finish[r] = t
                done += 1
                kv_used -= prompt[r] + gen[r]
                if closed > 0 and nxt < n:  # its client sends the next request now
                    arrival[nxt] = t
                    nxt += 1
                n_run -= 1
                run_id[k] = run_id[n_run]
                run_pre[k] = run_pre[n_run]
                run_gen[k] = run_gen[n_run]
                continue
            k += 1
    fs[0] = t
    ints[0], ints[1], ints[2], ints[3], ints[4] = w, n_run, done, kv_used, nxt
    stats[7] = t
    return done >= n


def run_instance(arrival, prompt, gen, policy: str, costs: StepCosts, max_num_seqs: int, budget: int,
                 max_batch: int = 8, max_wait_s: float = 0.05, use_jit: bool = True, chunk: int = CHUNK_STEPS,
                 concurrency: int = 0):
    """Serve one instance's requests (sorted by arrival, each fitting the KV cache): returns
    ``(first_token_s, finish_s, stats)`` (see :data:`N_STATS`). ``concurrency > 0``: a closed loop of that
    many clients (see the module docstring): the first ``concurrency`` requests arrive at ``arrival[0]``, each
    later one when an earlier one finishes, and ``arrival`` (a float array) is overwritten with those times."""
    if policy not in _POLICY_CODE:
        raise ConfigError("batching", policy, ", ".join(POLICIES))
    n = arrival.shape[0]
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    seqs = max(max_num_seqs, max_batch)
    run_id = np.zeros(seqs, np.int64)
    run_pre = np.zeros(seqs, np.int64)
    run_gen = np.zeros(seqs, np.int64)
    fs = np.array([arrival[0] if n else 0.0])
    ints = np.zeros(5, np.int64)
    stats = np.zeros(N_STATS)
    if n == 0:
        return first, finish, stats
    closed = int(concurrency)
    times = np.ascontiguousarray(arrival, float)
    if closed > 0:  # the first clients' requests at the start; the rest are let in as requests finish
        times = times.copy()
        times[:min(closed, n)] = times[0]
        times[min(closed, n):] = np.inf
        ints[4] = min(closed, n)
    kernel = _engine if use_jit else getattr(_engine, "py_func", _engine)  # NUMBA_DISABLE_JIT: a plain function
    args = (times, np.ascontiguousarray(prompt, np.int64),
            np.ascontiguousarray(gen, np.int64), _POLICY_CODE[policy], int(max_num_seqs), int(budget),
            int(costs.kv_tokens), int(max_batch), float(max_wait_s), costs.prefill, costs.decode, costs.ctx_step,
            first, finish, run_id, run_pre, run_gen, fs, ints, stats, int(chunk), closed)
    while not kernel(*args):
        pass  # back in Python between chunks: a pending KeyboardInterrupt is raised here
    if closed > 0:
        arrival[:] = times
    return first, finish, stats
