"""Energy and cost of a CoE batch (``rdusim coe --energy``, Table 2 and Fig. 8 in joules and dollars)
and of a served load (``rdusim serve --energy``, the serving tables).

A CoE batch has three phases (:class:`rdusim.scenarios.coe.CoELatency`): the router's prompt pass, the
copies that make experts resident, and the experts' runs. Each phase draws the node power the model
predicts for it (:mod:`rdusim.scenarios.energy`): the router's prompt pass at the batch, an expert's
run (prompt pass and G tokens, ``avg_power_w``) at the mean sub-batch of the batch's experts, and
during a copy every device idle but for its HBM writes at the copy rate. Power is the model's; time
is the profile's (published GPU latencies and the SN40L runtime's work under ``paper``), so
energy = power x time phase by phase. Tokens: batch x G generated tokens.

A served load draws, on each node, the expert-run power while the node is busy (``utilisation``)
and its idle power otherwise; per token over ``throughput_rps`` x G tokens per second.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from rdusim.core.platforms import load_platform
from rdusim.core.power import device_power_w, node_power_w, power_spec
from rdusim.scenarios.coe import CoELatency, load_profile, switch_bandwidth
from rdusim.scenarios.energy import add_energy, node_price
from rdusim.scenarios.footprint import CoEDeployment
from rdusim.scenarios.predict import clears_with_gpu_constants, gpu_constants, predict

COE_ENERGY_KEYS = ("router_power_w", "switching_power_w", "execution_power_w", "avg_power_w", "energy_j",
                   "energy_j_per_token", "tokens_per_joule", "price_usd_per_hour", "cost_usd_per_mtok",
                   "energy_basis", "price_basis")


@clears_with_gpu_constants
@lru_cache(maxsize=4096)
def run_power_w(platform: str, model: str, tp: int, batch: int, prompt: int, gen: int, execution: str,
                stack: str | None = None) -> tuple[float, float]:
    """``(prefill_power_w, avg_power_w)`` of the node while ``model`` runs one batch (``rdusim predict``
    with ``--energy``, under ``stack`` when given); NaN when it does not fit."""
    request = {"platform": platform, "model": model, "batch": batch, "tp": tp, "prompt": prompt, "gen": gen}
    row = pd.DataFrame([{**request, "stack": stack} if stack else {**request, "execution": execution}])
    out = add_energy(predict(row), gpu_constants()).iloc[0]
    return float(out["prefill_power_w"]), float(out["avg_power_w"])


def copy_power_w(platform: str, profile: str, tp: int) -> float:
    """Node power while experts are copied into HBM: ``tp`` devices written at their share of the copy
    rate (no arithmetic), the rest idle, plus the node's overheads."""
    p = load_platform(platform)
    spec = power_spec(p)
    per_device = switch_bandwidth(p, load_profile(profile), tp) / tp
    return float(node_power_w(spec, tp, device_power_w(spec, 0.0, per_device, 1.0)))


def coe_energy(lat: CoELatency, dep: CoEDeployment | None = None, price_per_hour: float | None = None) -> dict:
    """Energy and cost (:data:`COE_ENERGY_KEYS`) of the CoE batch ``lat``; NaN where it does not fit."""
    dep = dep or CoEDeployment.from_config()
    p = load_platform(lat.platform)
    spec = power_spec(p)
    price, price_basis = node_price(lat.platform, price_per_hour)
    nan = float("nan")
    out = dict.fromkeys(COE_ENERGY_KEYS, nan)
    out.update(price_usd_per_hour=price, energy_basis=spec.basis, price_basis=price_basis)
    if not lat.fits:
        return out
    tp = min(dep.tensor_parallel, p.devices)
    prof = load_profile(lat.profile)
    mode, stack = prof.execution(p), prof.stack(p)
    sub_batch = max(1, int(round(lat.batch / max(lat.expected_distinct_experts, 1.0))))
    router_w = run_power_w(lat.platform, dep.router_model, tp, lat.batch, dep.prompt_tokens, 1, mode, stack)[0]
    exec_w = run_power_w(lat.platform, dep.expert_model, tp, sub_batch, dep.prompt_tokens, lat.gen, mode, stack)[1]
    copy_w = copy_power_w(lat.platform, lat.profile, tp)
    energy = router_w * lat.router_s + copy_w * lat.switching_s + exec_w * lat.execution_s
    tokens = lat.batch * lat.gen
    out.update(router_power_w=router_w, switching_power_w=copy_w, execution_power_w=exec_w,
               avg_power_w=energy / lat.total_s, energy_j=energy, energy_j_per_token=energy / tokens,
               tokens_per_joule=tokens / energy, cost_usd_per_mtok=price / 3600.0 * lat.total_s / tokens * 1e6)
    return out


def serve_energy(summary: dict, gen: int, profile: str = "paper", dep: CoEDeployment | None = None,
                 max_batch: int = 8, prompt: int | None = None, nodes: int = 1,
                 price_per_hour: float | None = None) -> dict:
    """Energy and cost of a served load from a :func:`rdusim.scenarios.serve.simulate` summary: each of
    ``nodes`` nodes busy ``utilisation`` of the time at the expert-run power of its mean batch, idle
    otherwise; the whole load is ``nodes`` x ``throughput_rps`` requests of ``gen`` tokens per second.
    Keys: ``avg_power_w`` (all nodes), ``energy_j`` (over the simulated span), ``energy_j_per_token``,
    ``tokens_per_joule``, ``cost_usd_per_mtok`` and their bases."""
    dep = dep or CoEDeployment.from_config()
    platform = summary["platform"]
    p = load_platform(platform)
    spec = power_spec(p)
    price, price_basis = node_price(platform, price_per_hour)
    out = {"avg_power_w": np.nan, "energy_j": np.nan, "energy_j_per_token": np.nan, "tokens_per_joule": np.nan,
           "price_usd_per_hour": price, "cost_usd_per_mtok": np.nan, "energy_basis": spec.basis,
           "price_basis": price_basis}
    if not summary.get("fits"):
        return out
    tp = min(dep.tensor_parallel, p.devices)
    prof = load_profile(profile)
    mode, stack = prof.execution(p), prof.stack(p)
    mean_batch = summary["requests"] / max(summary["expert_batches"], 1)
    batch = int(min(max_batch, max(1, round(mean_batch))))
    busy_w = run_power_w(platform, dep.expert_model, tp, batch, prompt or dep.prompt_tokens, gen, mode, stack)[1]
    util = min(1.0, float(summary["utilisation"]))
    power = nodes * (util * busy_w + (1.0 - util) * spec.node_idle_w)
    tokens_per_s = nodes * summary["throughput_rps"] * gen
    span_s = summary["requests"] / summary["throughput_rps"]
    out.update(avg_power_w=power, energy_j=power * span_s, energy_j_per_token=power / tokens_per_s,
               tokens_per_joule=tokens_per_s / power,
               cost_usd_per_mtok=nodes * price / 3600.0 / tokens_per_s * 1e6)
    return out
