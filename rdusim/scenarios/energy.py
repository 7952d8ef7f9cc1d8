"""Energy and cost of a prediction: joules per token, tokens per joule, average power, dollars per
million tokens (``rdusim predict --energy``, and the CoE and serving tables).

Each pass (the prompt pass, a decode step at the mean context) does, on each of its ``tp`` devices,
the model's FLOPs (:func:`benchmarks.models.flops_per_token`, the prompt's causal attention summed
over its positions) and moves its bytes (the weights it multiplies against, the KV cache it reads and
writes; activations stay on chip in the fused modes and are not counted). Its device power is
:func:`rdusim.core.power.device_power_w` at the FLOP and byte rates over the pass's kernel time: the
pass time less an engine's runtime work per pass and per request (``fused`` mode,
:func:`baselines.gpu.step_overhead`). That runtime work sits between kernels microseconds to a
millisecond apart, shorter than a GPU's clock and power management reacts to, so the whole pass is
taken to draw the power of its kernels; a stack's set-up per request (before the first pass) is taken
at the node's idle power, and ``prefill_power_w`` is the average over the time to first token. The node adds its idle devices and its overheads
(:func:`rdusim.core.power.node_power_w`). Energy = power x time, phase by phase.

Cost: the platform's price per node-hour (``rdusim/data/prices.yaml``: published cloud list prices with
their date, or assumed where there is none) times the time, over the generated tokens. Every SN40L
result carries the label of its assumed power (``energy_basis``).
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np

from baselines.gpu import request_overhead, step_overhead
from benchmarks.models import get_model, matmul_params_per_token
from rdusim.core.checks import check_keys
from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import load_platform
from rdusim.core.power import device_power_w, node_power_w, power_spec
from rdusim.core.precision import gemm_peak, kv_precision, weight_precision
from rdusim.core.stacks import load_stack
from rdusim.scenarios.closed_form import stack_work

PRICES_FILE = DATA_DIR / "prices.yaml"
BF16 = 2
MAX_PRICE = 1e6  # USD per node-hour: a bound on the input, far above any machine's
ENERGY_COLUMNS = ("prefill_power_w", "decode_power_w", "avg_power_w", "energy_j", "prefill_j_per_token",
                  "decode_j_per_token", "energy_j_per_token", "tokens_per_joule", "price_usd_per_hour",
                  "cost_usd_per_mtok", "energy_basis", "price_basis")


@lru_cache(maxsize=None)
def load_prices() -> dict[str, dict]:
    """Default prices per node-hour: platform name -> {usd_per_hour, basis, source}."""
    data = mapping("prices", load_yaml(PRICES_FILE, "prices"), "a mapping of platform prices")
    out = {}
    for name, entry in data.items():
        where = f"prices.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(where, entry, "a mapping with usd_per_hour, basis, source")
        check_keys(where, entry, ("usd_per_hour", "basis", "source"))
        value = entry.get("usd_per_hour")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_PRICE:
            raise ConfigError(f"{where}.usd_per_hour", value, f"a price > 0 and <= {MAX_PRICE:g}")
        out[str(name)] = {"usd_per_hour": float(value), "basis": str(entry.get("basis", "")),
                          "source": str(entry.get("source", ""))}
    return out


def node_price(platform: str, price_per_hour: float | None = None) -> tuple[float, str]:
    """``(USD per node-hour, basis)``: ``price_per_hour`` when given (``input``), else the default of
    ``rdusim/data/prices.yaml`` for this platform name, else NaN (``no price``)."""
    if price_per_hour is not None:
        if isinstance(price_per_hour, bool) or not isinstance(price_per_hour, (int, float)) \
                or not 0 < price_per_hour <= MAX_PRICE:
            raise ConfigError("price-per-hour", price_per_hour, f"a price in USD per node-hour, > 0 and <= {MAX_PRICE:g}")
        return float(price_per_hour), "input: --price-per-hour"
    entry = load_prices().get(load_platform(platform).name)
    if entry is None:
        return float("nan"), "no price: give --price-per-hour"
    return entry["usd_per_hour"], f"{entry['basis']} ({entry['source']})"


def pass_work(model: str, tp: int, batch, prompt, gen, weight_bytes: float = BF16,
              kv_bytes: float = BF16) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(prefill_flops, prefill_bytes, decode_flops, decode_bytes)`` on one of ``tp`` devices: the prompt
    pass of ``batch`` x ``prompt`` tokens, and one decode step of ``batch`` sequences at the mean
    context L + G/2 (capped by a sliding window), with ``weight_bytes`` per weight and ``kv_bytes`` per
    cached value. Arrays broadcast. Dense models of the zoo (or config.json) only."""
    m = get_model(model)
    b, length = np.asarray(batch, dtype=float), np.asarray(prompt, dtype=float)
    ctx = length + np.asarray(gen) // 2
    if m.sliding_window:
        ctx = np.minimum(ctx, m.sliding_window)
    weights = weight_bytes * matmul_params_per_token(m) / tp
    kv_token = kv_bytes * 2 * m.layers * max(1, m.kv_heads // tp) * m.head_dim
    attn = 4.0 * m.layers * m.q_dim / tp            # FLOPs per attended position per query
    linear = 2.0 * matmul_params_per_token(m) / tp  # FLOPs per token of the linears and LM head
    w = np.minimum(length, m.sliding_window) if m.sliding_window else length  # keys one query attends to at most
    attended = w * (w + 1) / 2 + (length - w) * w                               # summed over the prompt, causal
    prefill_flops = b * (linear * length + attn * attended)
    prefill_bytes = weights + b * length * kv_token
    decode_flops = b * (linear + attn * ctx)
    decode_bytes = weights + b * (ctx + 1) * kv_token
    return prefill_flops, prefill_bytes, decode_flops, decode_bytes


def device_pass_powers(spec, kind: str, model: str, tp: int, mode: str, batch, prompt, gen, ttft_s, decode_s,
                       const=None, stack: str | None = None, weight_bytes: float = BF16,
                       kv_bytes: float = BF16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(prefill_w, decode_w, request_s)``: the power of one busy device of the ``tp`` during the prompt
    pass and during a decode step (:func:`pass_work` over the pass's kernel time: the pass time less its
    serving stack's runtime work per pass and per request, :class:`rdusim.core.stacks.Stack`; without a
    ``stack``, a GPU mode's engine work of ``const`` when it is given), and the request's set-up time
    before its first pass (in the time to first token; the node idles through it)."""
    ttft, dec = np.asarray(ttft_s, dtype=float), np.asarray(decode_s, dtype=float)
    b = np.asarray(batch, dtype=float)
    pf, pb, df, db = pass_work(model, tp, batch, prompt, gen, weight_bytes, kv_bytes)
    request = np.zeros_like(ttft)
    if stack is not None:  # GPU engines and the SN40L runtime (sambaflow stacks) alike
        step, per_request = stack_work(load_stack(stack), model, b, np.asarray(prompt, dtype=float), tp)
        request = request + per_request
        ttft, dec = ttft - step - request, dec - step
    elif kind == "gpu" and const is not None:
        step = step_overhead(mode, const, b)
        request = request + request_overhead(mode, const)
        ttft, dec = ttft - step - request, dec - step
    return device_power_w(spec, pf, pb, ttft), device_power_w(spec, df, db, dec), request


def energy_arrays(platform: str, model: str, tp: int, mode: str, batch, prompt, gen, ttft_s, decode_s,
                  const=None, price_per_hour: float | None = None, stack: str | None = None,
                  precision: str | None = None, kv_precision_name: str | None = None) -> dict[str, np.ndarray]:
    """Energy and cost columns (:data:`ENERGY_COLUMNS`) of rows of one (platform, model, tp, mode) group
    from their predicted prompt-pass time ``ttft_s`` and mean decode-step time ``decode_s`` (arrays;
    NaN where a row does not fit). ``const``: the GPU constants of the prediction; ``stack``: its serving
    stack (the runtime work taken off the kernel time); ``precision`` and ``kv_precision_name``: the row's
    number formats (bytes per weight and per cached value; compute utilisation against that format's
    peak). A model without a dense closed form here (a mixture of experts) gets NaN and says so."""
    p = load_platform(platform)
    spec = power_spec(p)
    b = np.asarray(batch, dtype=float)
    length, g = np.asarray(prompt, dtype=float), np.asarray(gen, dtype=float)
    ttft, dec = np.asarray(ttft_s, dtype=float), np.asarray(decode_s, dtype=float)
    wb, kb = BF16, BF16
    if precision not in (None, "bf16"):
        wb = weight_precision(precision).bytes_per_value
        spec = replace(spec, peak_flops=gemm_peak(p, precision))
    if kv_precision_name not in (None, "bf16"):
        kb = kv_precision(kv_precision_name).bytes_per_value
    try:
        dev_p, dev_d, request = device_pass_powers(spec, p.kind, model, tp, mode, b, length, g, ttft, dec, const,
                                                   stack, wb, kb)
    except ConfigError:  # not a dense model of the zoo: no energy model for it yet
        nan = np.full(np.broadcast(b, ttft).shape, np.nan)
        out = {c: nan.copy() for c in ENERGY_COLUMNS}
        out["energy_basis"] = np.full(nan.shape, f"not modelled: {model} has no dense closed form (mixture of "
                                      "experts); energy is modelled for dense models", dtype=object)
        out["price_basis"] = np.full(nan.shape, node_price(platform, price_per_hour)[1], dtype=object)
        price = node_price(platform, price_per_hour)[0]
        out["price_usd_per_hour"] = np.full(nan.shape, price)
        out["cost_usd_per_mtok"] = price / 3600.0 * (ttft + g * dec) / (b * g) * 1e6  # time alone sets the cost
        return out
    request = np.minimum(request, ttft)
    # the prompt phase: the request's set-up with the node idle, then the prompt pass
    p_prefill = (node_power_w(spec, tp, dev_p) * (ttft - request) + spec.node_idle_w * request) / ttft
    p_decode = node_power_w(spec, tp, dev_d)
    e_prefill = p_prefill * ttft
    e_decode = p_decode * dec * g
    total_s = ttft + g * dec
    energy = e_prefill + e_decode
    price, price_basis = node_price(platform, price_per_hour)
    n = np.broadcast(b, ttft).shape
    return {
        "prefill_power_w": np.broadcast_to(p_prefill, n).astype(float),
        "decode_power_w": np.broadcast_to(p_decode, n).astype(float),
        "avg_power_w": energy / total_s,
        "energy_j": energy,
        "prefill_j_per_token": e_prefill / (b * length),
        "decode_j_per_token": e_decode / (b * g),
        "energy_j_per_token": energy / (b * g),
        "tokens_per_joule": b * g / energy,
        "price_usd_per_hour": np.full(n, price),
        "cost_usd_per_mtok": price / 3600.0 * total_s / (b * g) * 1e6,
        "energy_basis": np.full(n, spec.basis, dtype=object),
        "price_basis": np.full(n, price_basis, dtype=object),
    }


def add_energy(frame, constants=None, price_per_hour: float | None = None):
    """A copy of a :func:`rdusim.scenarios.predict.predict` result with the energy and cost columns
    (:data:`ENERGY_COLUMNS`) added, per (platform, model, tp, execution) group; NaN where a row does
    not fit."""
    from_predict = ("ttft_ms", "decode_ms_per_token", "execution")
    missing = [c for c in from_predict if c not in frame]
    if missing:
        raise ConfigError("frame columns", missing, "a frame returned by rdusim.scenarios.predict.predict")
    df = frame.reset_index(drop=True)
    cols = {c: np.full(len(df), np.nan, dtype=object if c.endswith("basis") else float) for c in ENERGY_COLUMNS}
    extra = [c for c in ("stack", "precision", "kv_precision") if c in df]
    keys = ["platform", "model", "tp", "execution"] + extra
    for combo, group in df.groupby(keys, sort=False, dropna=False):
        platform, model, tp, mode = combo[:4]
        named = dict(zip(extra, combo[4:]))
        at = group.index.to_numpy()
        out = energy_arrays(platform, model, int(tp), mode, group["batch"].to_numpy(), group["prompt"].to_numpy(),
                            group["gen"].to_numpy(), group["ttft_ms"].to_numpy() / 1e3,
                            group["decode_ms_per_token"].to_numpy() / 1e3, const=constants, price_per_hour=price_per_hour,
                            stack=named.get("stack"), precision=named.get("precision"),
                            kv_precision_name=named.get("kv_precision"))
        for c in ENERGY_COLUMNS:
            cols[c][at] = out[c]
    for c in ENERGY_COLUMNS:
        df[c] = cols[c]
    df.index = frame.index
    return df
