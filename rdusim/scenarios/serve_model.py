"""Single-model serving: ``rdusim serve --platform P --model M --tp N``: ``instances`` copies of one model,
each on ``tp`` devices of the node, each an iteration-level engine (:mod:`rdusim.scenarios.engine`);
requests go to the instances round-robin (vLLM production-stack's default router).

Metrics (issue 22), as serving benchmarks report them (vLLM's ``benchmark_serving``, TensorRT-LLM's
``gptManagerBenchmark``): TTFT (arrival to first token), TPOT (time per output token after the first:
``(finish - first token) / (gen - 1)``, requests with ``gen > 1``), end-to-end latency, each at
mean/p50/p90/p99 in ms; output tokens/s per node and per user (mean of 1/TPOT); goodput after
DistServe (Zhong et al., OSDI 2024): requests/s served within both a TTFT and a TPOT bound
(``goodput_rps``; ``slo_attainment`` the fraction of requests within both). DistServe's goodput of a
deployment, the highest offered rate whose attainment meets a target, is taken over a load sweep by
:func:`max_rate_within`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.models import get_model
from rdusim.core.checks import number, whole
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.core.precision import DEFAULT_PRECISION
from rdusim.core.stacks import load_stack
from rdusim.scenarios.engine import N_STATS, POLICIES, load_engine_settings, run_instance, step_costs
from rdusim.scenarios.predict import check_row
from rdusim.scenarios.serve import latency_summary, saturation
from rdusim.scenarios.traces import poisson_with_lengths

MAX_CONCURRENCY = 1_000_000  # clients of a closed loop


def stack_name(platform: str, model: str, tp: int, execution: str | None, stack: str | None) -> str:
    """The serving stack a run uses: ``stack``; else, with no ``execution`` either, the platform's serving stack
    (``serving_stack``: a serving engine with its scheduler, ``trtllm`` on GPUs, not the 2023 NeMo inference
    stack that single-GPU platforms default to for ``predict``); else the platform's default for ``execution``."""
    if stack is None and execution is None:
        stack = load_platform(platform).serving_stack
    return check_row(platform, model, 1, tp, 1, 1, execution, stack)["stack"]


def simulate_model(platform: str, model: str, tp: int, trace: pd.DataFrame, batching: str | None = None,
                   instances: int | None = None, execution: str | None = None, ttft_slo_s: float = 1.0,
                   tpot_slo_s: float = 0.1, max_batch: int = 8, max_wait_s: float = 0.05, settings: dict | None = None,
                   stack: str | None = None, use_jit: bool = True, precision: str = DEFAULT_PRECISION,
                   kv_precision: str = DEFAULT_PRECISION, concurrency: int | None = None) -> tuple[dict, pd.DataFrame]:
    """Serve ``trace`` (columns arrival_s, prompt, gen; sorted) with ``instances`` (default: as many as the
    node's devices allow) copies of ``model`` on ``tp`` devices each, under the serving ``stack`` (default: the
    platform's; :mod:`rdusim.core.stacks`), weights in ``precision`` and the KV cache in ``kv_precision``
    (``rdusim/data/precisions.yaml``). Returns (summary, per-request frame).
    The engine's settings: ``rdusim/data/serving_engine.yaml``, then the stack's ``scheduler`` defaults
    (:meth:`rdusim.core.stacks.Stack.engine_settings`: TensorRT-LLM's in-flight batching, max batch and
    token budget under ``trtllm``), then ``settings``; ``batching`` (a policy of :data:`POLICIES`) overrides
    the stack's, and without either it is ``prefill-first``.
    ``concurrency``: a closed loop of that many clients instead of the trace's arrival times (the module
    :mod:`~rdusim.scenarios.engine`): the clients are split over the instances as evenly as they go (each
    client keeps to its instance, as round-robin dealing does under equal requests), every client's first
    request arrives at the trace's first time and its next one when the previous one finishes; the
    per-request frame carries the arrival times that gives.
    A model whose weights leave no room for a KV cache is ``fits: false`` with the reason."""
    if batching is not None and batching not in POLICIES:
        raise ConfigError("batching", batching, ", ".join(POLICIES))
    p = load_platform(platform)
    tp = whole("tp", tp, 1, p.devices)
    instances = whole("instances", p.devices // tp if instances is None else instances, 1, max(1, p.devices // tp),
                      f"instances of {tp} devices on {p.devices} devices of {p.name}")
    if concurrency is not None:
        concurrency = whole("concurrency", concurrency, instances, MAX_CONCURRENCY,
                            f"clients in flight, at least one per instance ({instances})")
    ttft_slo_s = number("ttft_slo", ttft_slo_s, 0, above=True, what="seconds")
    tpot_slo_s = number("tpot_slo", tpot_slo_s, 0, above=True, what="seconds")
    used = stack_name(platform, model, tp, execution, stack)
    own = load_stack(used).engine_settings()
    own_batching = own.pop("batching", "prefill-first")
    batching = batching or own_batching
    s = {**load_engine_settings(), **own, **(settings or {})}
    max_seqs = whole("max_num_seqs", s["max_num_seqs"], 1, 4096)
    max_batch = whole("max_batch", max_batch, 1, max_seqs, "requests per static batch (at most max_num_seqs)")
    costs = step_costs(platform, model, tp, execution, max_seqs, float(s["kv_memory_fraction"]),
                       int(s["context_grid_points"]), used, precision, kv_precision)
    head = {"platform": platform, "model": model, "stack": used,
            "tp": tp, "instances": instances, "batching": batching, "max_num_seqs": max_seqs,
            "token_budget": int(s["chunk_token_budget"] if batching == "chunked" else s["prefill_token_budget"]),
            "precision": precision,
            "kv_precision": kv_precision, "arrivals": "open" if concurrency is None else f"closed loop of {concurrency}"}
    if costs.kv_tokens <= 0:
        return {**head, "fits": False, "reason": f"weights {costs.weights_bytes / 1e9:.1f} GB per device leave no "
                f"KV cache in {s['kv_memory_fraction']:.0%} of {costs.capacity_bytes / 1e9:.0f} GB"}, pd.DataFrame()
    arrival = trace["arrival_s"].to_numpy(float).copy()
    if np.any(np.diff(arrival) < 0):
        raise ConfigError("trace arrival_s", "unsorted", "arrival times in ascending order (read_request_trace sorts a file)")
    prompt = trace["prompt"].to_numpy(np.int64)
    gen = trace["gen"].to_numpy(np.int64)
    window = get_model(model).context_window or np.iinfo(np.int64).max
    limit = min(window, costs.kv_tokens)
    accepted = prompt + gen <= limit
    if batching == "chunked":
        budget = whole("chunk_token_budget", s["chunk_token_budget"], 1, 2**31)
    elif batching == "inflight":  # a prompt longer than the budget runs as the only prompt of its step
        budget = whole("prefill_token_budget", s["prefill_token_budget"], 1, 2**31)
    else:  # prefill-first: raised to the longest prompt, so every admitted prompt fits one step
        budget = max(int(s["prefill_token_budget"]), int(prompt[accepted].max()) if accepted.any() else 1)
    head["token_budget"] = int(budget)  # what the engine ran with
    first = np.full(len(arrival), np.nan)
    finish = np.full(len(arrival), np.nan)
    instance = np.full(len(arrival), -1, np.int64)
    idx = np.flatnonzero(accepted)
    instance[idx] = np.arange(idx.size) % instances
    totals = np.zeros(N_STATS)
    for i in range(instances):
        mine = idx[instance[idx] == i]
        clients = 0 if concurrency is None else concurrency // instances + (i < concurrency % instances)
        times = arrival[mine]
        f, e, st = run_instance(times, prompt[mine], gen[mine], batching, costs, max_seqs, budget, max_batch,
                                max_wait_s, use_jit=use_jit, concurrency=clients)
        first[mine], finish[mine] = f, e
        if clients:
            arrival[mine] = times
        totals[:5] += st[:5]
        totals[5:7] = np.maximum(totals[5:7], st[5:7])
    per = pd.DataFrame({"arrival_s": arrival, "prompt": prompt, "gen": gen, "instance": instance,
                        "first_token_s": first, "finish_s": finish})
    return {**head, **summarise(per, ttft_slo_s, tpot_slo_s, totals, costs, instances)}, per


def summarise(per: pd.DataFrame, ttft_slo_s: float, tpot_slo_s: float, totals: np.ndarray, costs, instances: int) -> dict:
    """The run's summary from its per-request frame (see the module docstring for the metrics)."""
    arrival, first, finish = (per[c].to_numpy(float) for c in ("arrival_s", "first_token_s", "finish_s"))
    gen = per["gen"].to_numpy(np.int64)
    served = np.isfinite(finish)
    n = int(served.sum())
    if n == 0:
        return {"fits": False, "reason": f"no request fits the KV cache ({costs.kv_tokens:,} tokens) and the "
                "context window", "requests": len(per), "rejected": len(per)}
    ttft = first - arrival
    e2e = finish - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(gen > 1, (finish - first) / (gen - 1), np.nan)
    start, end = float(arrival[served].min()), float(finish[served].max())
    makespan = end - start
    ok = served & (ttft <= ttft_slo_s) & ~(tpot > tpot_slo_s)
    offered, saturated = saturation(arrival[served], finish[served])  # busy is no sign: decoding keeps it busy
    with np.errstate(divide="ignore"):
        per_user = 1.0 / tpot[np.isfinite(tpot) & (tpot > 0)]
    return {
        "fits": True, "reason": "", "requests": len(per), "served": n, "rejected": int(len(per) - n),
        **latency_summary("ttft", ttft), **latency_summary("tpot", tpot), **latency_summary("e2e", e2e),
        "throughput_rps": n / makespan, "offered_rps": offered, "saturated": saturated,
        "tokens_per_s_per_node": float(gen[served].sum()) / makespan,
        "tokens_per_s_per_user": float(per_user.mean()) if per_user.size else float("nan"),
        "ttft_slo_ms": ttft_slo_s * 1e3, "tpot_slo_ms": tpot_slo_s * 1e3,
        "slo_attainment": float(ok.sum()) / len(per), "goodput_rps": float(ok.sum()) / makespan,
        "utilisation": totals[0] / makespan / instances, "mean_batch": totals[4] / totals[0] if totals[0] else 0.0,
        "largest_batch": int(totals[5]), "kv_cache_tokens": int(costs.kv_tokens), "steps": int(totals[1]),
    }


def max_rate_within(rows: pd.DataFrame, metric: str, bound: float) -> float:
    """The highest offered rate of a load sweep (rows with ``offered_rps`` and ``metric``) at which
    ``metric <= bound`` holds at that rate and every lower one (NaN when even the lowest fails)."""
    rows = rows.sort_values("offered_rps")
    good = (rows[metric] <= bound).to_numpy() & rows["fits"].to_numpy(bool)
    if not good.size or not good[0]:
        return float("nan")
    upto = good.size if good.all() else int(np.argmin(good))
    return float(rows["offered_rps"].iloc[upto - 1])


RATE_BRACKET = 1.5  # the bisection's top: this times the locked loop's rate (a search bound, not a model input)


def random_phase_closed_loop(platform: str, model: str, tp: int, concurrency: int, prompt: int, gen: int,
                             requests: int, warmup: int, locked_rps: float, iterations: int = 14, seed: int = 0,
                             lengths=None, **kwargs) -> tuple[dict, pd.DataFrame, dict]:
    """A closed loop of ``concurrency`` clients whose phases are random, as the open system it behaves like:
    Poisson arrivals at the rate ``lam`` at which, by Little's law, ``concurrency`` requests are in flight
    (``lam x`` mean end-to-end latency ``= concurrency``; the classical open approximation of a closed
    queueing network). A deterministic closed loop of identical requests locks its clients into one phase
    pattern: staggered so that no prompt waits for another's, or, once each client's next request arrives
    any time at all after its last one finished (a turnaround above zero), in a train where every prompt
    waits for the one before. Real benchmark clients drift between such patterns; this is the other limit,
    with no constant. ``lam`` is found by bisection on a log scale below :data:`RATE_BRACKET` times
    ``locked_rps`` (requests/s the locked loop serves), every trial drawing the same unit-rate arrival times (common random numbers),
    ``requests`` requests a trial (lengths as :func:`~rdusim.scenarios.traces.poisson_with_lengths`), the
    first ``warmup`` left out of the in-flight count. Returns the chosen trial's ``(summary, per-request
    frame, {"rate_rps", "in_flight"})``; ``kwargs`` go to :func:`simulate_model` (``instances``, ``stack``,
    ``precision``, ...)."""
    unit = poisson_with_lengths(1.0, requests, prompt, gen, lengths, seed=seed)

    def trial(lam: float):
        summary, per = simulate_model(platform, model, tp, unit.assign(arrival_s=unit["arrival_s"] / lam), **kwargs)
        steady = per.iloc[warmup:]
        e2e = float((steady["finish_s"] - steady["arrival_s"]).mean())
        return summary, per, {"rate_rps": lam, "in_flight": lam * e2e}

    hi = RATE_BRACKET * locked_rps
    lo = hi / 64.0
    best = trial(hi)
    if not best[0].get("fits", False) or best[2]["in_flight"] < concurrency:
        return best  # does not fit, or even at the top fewer are in flight: the loop is bounded elsewhere
    for _ in range(iterations):
        mid = float(np.sqrt(lo * hi))
        t = trial(mid)
        if t[2]["in_flight"] < concurrency:
            lo = mid
        else:
            hi, best = mid, t
    return best
