"""``rdusim predict``: time to first token and decode time of a model on a platform, one row or many.

A row names a platform (a GPU, a DGX, ``sn40l`` or ``sn40l-node``, or a platform YAML path), a model
of the zoo, batch, tensor-parallel degree, prompt length L, output tokens G and an execution mode.
``ttft_ms`` is the prompt pass that yields the first token; ``decode_ms_per_token`` the mean over the
G decode steps, the KV cache growing from L to L + G (evaluated at the mean context L + G/2, where
every cost is linear in the context); ``total_ms = ttft_ms + G * decode_ms_per_token``.

GPU rows are evaluated in one numba pass per (platform, model, tp, mode) group: each kernel's
matmul FLOPs, bytes and collective bytes are exact polynomials of batch and lengths (basis
1, B, L, BL, L^2, BL^2 for prefill; 1, B, C, BC for decode), read off a few small probe graphs once.
SN40L rows use one template per (model, phase, tp): the op table of one decoder layer (and the
distinct head and tail) with its numbers as exact polynomials of batch and length, read off a few
probe graphs (:mod:`rdusim.sn40l.template`). The rows of a group are then planned, placed and costed
in one numba pass per step, the layer's kernels counted once per layer; no graph is built per row,
and nothing is cached per row. The full-graph path (:func:`rdu_pass_reference`) is the reference the
fast path is tested against (tests/test_template.py, tests/test_tiled.py).

Memory: a GPU row fits when weights and the KV cache at the last token fit HBM. An SN40L row follows
the evaluator's one placement rule (:func:`rdusim.sn40l.memory.place_bytes`: KV cache and
activations in HBM, weights in the rest of HBM and DDR), for the KV cache at the last token and for
both passes' graphs; a row that fails gets ``fits: false`` and the placement's reason.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from baselines.lowering import lower
from benchmarks.decoder import layer_graph, workload_graph
from benchmarks.models import get_model, is_config_path, load_models, weight_bytes
from benchmarks.moe import is_moe
from rdusim.core.checks import whole
from rdusim.core.errors import ConfigError
from rdusim.core.jit import njit
from rdusim.core.platforms import load_platform
from rdusim.core.precision import DEFAULT_PRECISION
from rdusim.core.stacks import Stack, load_stack
from rdusim.scenarios.closed_form import stack_work
from rdusim.scenarios.extended import EXTENSION_COLUMNS, largest_batch, predict_extended
from rdusim.scenarios.predict_light import (  # noqa: F401 - re-exported: the light half of this module
    BEST_MODE,
    DEFAULTS,
    GPU_MODES,
    INPUT_COLUMNS,
    RDU_MODES,
    RESULT_COLUMNS,
    SIZE_LIMITS,
    GpuTemplate,
    _check_context,
    check_row,
    clears_with_gpu_constants,
    gpu_constants,
    gpu_memory_fits,
    gpu_rows_reference,
    gpu_times,
    load_gpu_template,
    memory_need,
    store_gpu_template,
    use_gpu_constants,
)
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.memory import place_bytes
from rdusim.sn40l.run import EXECUTION_MODES, RduResult, evaluate
from rdusim.sn40l.template import OpTemplate, fit_template, template_times

PREFILL_PROBES = [(1, 16), (2, 16), (1, 32), (2, 32), (1, 48), (3, 48)]
DECODE_PROBES = [(1, 16), (2, 16), (1, 32), (3, 48)]


def _prefill_basis(b, length):
    return np.array([1.0, b, length, b * length, length * length, b * length * length])


def _decode_basis(b, context):
    return np.array([1.0, b, context, b * context])


# ------------------------------------------------------------------------------- memory check
def memory_fits(platform: str, model: str, tp: int, batch, prompt, gen) -> tuple[np.ndarray, np.ndarray]:
    """``(fits, reason)`` arrays of the closed-form memory check of many rows (one platform, model, tp).

    GPUs: weights + KV cache <= HBM. RDUs: the SN40L placement rule
    (:func:`rdusim.sn40l.memory.place_bytes`), KV cache in HBM and weights in the rest of HBM and DDR.
    Reasons are empty where a row fits.
    """
    if load_platform(platform).kind != "rdu":
        return gpu_memory_fits(platform, model, tp, batch, prompt, gen)
    weights, kv, capacity = memory_need(platform, model, tp, batch, prompt, gen)
    kv = np.atleast_1d(np.asarray(kv, dtype=float))
    reason = np.full(kv.shape, "", dtype=object)
    chip = rdu_chip(platform)
    ok = (kv <= chip.hbm_bytes) & (weights + kv <= capacity)
    for i in np.flatnonzero(~ok):  # only rows that do not fit
        reason[i] = place_bytes(weights, float(kv[i]), chip).reason
    return ok, reason


def memory_check(platform: str, model: str, batch: int, tp: int, prompt: int, gen: int) -> tuple[bool, str]:
    """Whether weights and the KV cache of one device fit its memory (see :func:`memory_fits`)."""
    ok, reason = memory_fits(platform, model, tp, batch, prompt, gen)
    return bool(ok[0]), str(reason[0])


# ------------------------------------------------------------------------------- GPU templates
def _fit_coefficients(samples: list[np.ndarray], bases: list[np.ndarray]) -> np.ndarray:
    a = np.vstack(bases)
    y = np.stack(samples)                      # probes x quantities x kernels
    flat = y.reshape(len(samples), -1)
    coef, *_ = np.linalg.lstsq(a, flat, rcond=None)
    if not np.allclose(a @ coef, flat, rtol=1e-9, atol=1e-3):
        raise RuntimeError("kernel quantities are not polynomial in the probe basis")
    return coef.T.reshape(y.shape[1], y.shape[2], a.shape[1])


@lru_cache(maxsize=None)
def gpu_template(model: str, tp: int, mode: str) -> GpuTemplate:
    """Kernel coefficients of ``model`` on one of ``tp`` GPUs under ``mode``: from the cache on disk
    (:func:`~rdusim.scenarios.predict_light.load_gpu_template`, keyed by what they are computed from),
    else built from probe graphs (:func:`build_gpu_template`) and cached."""
    tpl = load_gpu_template(model, tp, mode)
    if tpl is None:
        tpl = build_gpu_template(model, tp, mode)
        store_gpu_template(model, tp, mode, tpl)
    return tpl


def build_gpu_template(model: str, tp: int, mode: str) -> GpuTemplate:
    """Kernel coefficients of ``model`` on one of ``tp`` GPUs under ``mode``, read off the probe graphs."""
    m = get_model(model)
    out = {}
    for phase, probes, basis in (("prefill", PREFILL_PROBES, _prefill_basis), ("decode", DECODE_PROBES, _decode_basis)):
        samples, bases = [], []
        for b, n in probes:
            k = lower(workload_graph(m, phase, b, n, tp, attention_impl="sdpa"), mode)
            samples.append(np.vstack([k.mm_flops, k.bytes, k.coll_bytes]))
            bases.append(basis(b, n))
        out[phase] = (_fit_coefficients(samples, bases), k.collectives.copy(), k.ops.astype(float), k.kv_attention.copy())
    return GpuTemplate(out["prefill"][0], out["decode"][0], out["prefill"][1], out["decode"][1],
                       out["prefill"][2], out["decode"][2], out["decode"][3])


@njit(cache=True)
def _gpu_time(coef, collectives, ops, attn, basis, gemm, bw, attn_gemm, attn_bw, fixed, nvlink, allreduce_lat, host,
              eager):
    """Time of one pass: sum over kernels of fixed + max(FLOPs/gemm, bytes/bw) (+ all-reduce), eager
    overlapping host time per op; a kernel of attention over the KV cache (``attn[k] > 0``) at its own rates
    (the numba twin of :func:`baselines.gpu.total_time`; its numpy reference is
    :func:`~rdusim.scenarios.predict_light.gpu_rows_reference`)."""
    total = 0.0
    for k in range(coef.shape[1]):
        flops = 0.0
        nbytes = 0.0
        coll = 0.0
        for j in range(basis.shape[0]):
            flops += coef[0, k, j] * basis[j]
            nbytes += coef[1, k, j] * basis[j]
            coll += coef[2, k, j] * basis[j]
        if attn[k] > 0.0:
            t = fixed + max(flops / attn_gemm, nbytes / attn_bw)
        else:
            t = fixed + max(flops / gemm, nbytes / bw)
        if nvlink > 0.0:
            t += collectives[k] * allreduce_lat + coll / nvlink
        if eager:
            t = max(t, host * ops[k])
        total += t
    return total


@njit(cache=True)
def _gpu_rows(pcoef, pcoll, pops, dcoef, dcoll, dops, dattn, batch, prompt, ctx, gemm, bw, attn_gemm, attn_bw, fixed,
              nvlink, allreduce_lat, host, eager):
    n = batch.shape[0]
    ttft = np.empty(n)
    dec = np.empty(n)
    pb = np.empty(6)
    db = np.empty(4)
    pattn = np.zeros(pcoef.shape[1])  # a prompt pass has no attention over a KV cache
    for i in range(n):
        b, length, c = batch[i], prompt[i], ctx[i]
        pb[0], pb[1], pb[2], pb[3], pb[4], pb[5] = 1.0, b, length, b * length, length * length, b * length * length
        db[0], db[1], db[2], db[3] = 1.0, b, c, b * c
        ttft[i] = _gpu_time(pcoef, pcoll, pops, pattn, pb, gemm, bw, attn_gemm, attn_bw, fixed, nvlink, allreduce_lat,
                            host, eager)
        dec[i] = _gpu_time(dcoef, dcoll, dops, dattn, db, gemm, bw, attn_gemm, attn_bw, fixed, nvlink, allreduce_lat,
                           host, eager)
    return ttft, dec


def _gpu_group(rows: pd.DataFrame, platform: str, model: str, tp: int, mode: str, const,
               stack: Stack) -> tuple[np.ndarray, np.ndarray]:
    """``(ttft_s, decode_s)`` of GPU rows that fit: the template's kernels summed by numba, plus the
    stack's runtime work."""
    return gpu_times(gpu_template(model, tp, mode), _gpu_rows, platform, model, tp, mode, const,
                     rows["batch"].to_numpy(), rows["prompt"].to_numpy(), rows["gen"].to_numpy(), stack)


# ------------------------------------------------------------------------------- RDU rows
# Probe sizes (batch, length) of the one-layer templates: the first ones fix the polynomials of the
# basis (prefill: 1, B, L, BL, L^2, BL^2; decode: 1, B, C, BC), the last two check them.
PREFILL_EXPONENTS = [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
PREFILL_POINTS = [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (2, 3), (3, 5), (5, 17)]
DECODE_EXPONENTS = [(0, 0), (1, 0), (0, 1), (1, 1)]
DECODE_POINTS = [(1, 1), (2, 1), (1, 2), (2, 2), (3, 5), (5, 17)]


@lru_cache(maxsize=None)
def rdu_chip(platform: str, tp: int = 1) -> RduChip:
    """The SN40L socket of an RDU platform in a group of ``tp`` sockets (cached per platform name and tp;
    tp changes only the all-reduce links of a group that spans two halves of a system)."""
    return RduChip.from_platform(platform, int(tp))


@lru_cache(maxsize=None)
def rdu_template(model: str, phase: str, tp: int) -> OpTemplate:
    """The op table of one decoder layer (and the distinct head and tail) of ``model`` on one of ``tp``
    sockets as polynomials of batch and length (:mod:`rdusim.sn40l.template`), read off a few probe
    graphs once; it does not depend on the chip."""
    m = get_model(model)
    exponents, points = (PREFILL_EXPONENTS, PREFILL_POINTS) if phase == "prefill" else (DECODE_EXPONENTS, DECODE_POINTS)
    return fit_template([layer_graph(m, phase, b, s, tp) for b, s in points], points, exponents)


def rdu_passes(chip: RduChip, model: str, phase: str, batch, seq_len, tp: int, mode: str):
    """``(fits, reason, time_s)`` arrays of ``prefill`` (``seq_len`` = prompt) or ``decode`` steps
    (``seq_len`` = context) of ``model`` on one SN40L socket ``chip`` of a ``tp``-socket group, for
    each ``(batch[i], seq_len[i])``. A decode step depends on its context only through the attended
    positions."""
    fusion, orchestration = EXECUTION_MODES[mode]
    seq = np.asarray(seq_len, dtype=np.int64)
    window = get_model(model).sliding_window
    if phase == "decode" and window:  # benchmarks.models.attended_positions, for many contexts
        seq = np.minimum(seq, window)
    return template_times(rdu_template(model, phase, int(tp)), np.asarray(batch), seq, chip, fusion, orchestration)


def rdu_pass(chip: RduChip, model: str, phase: str, batch: int, seq_len: int, tp: int, mode: str) -> tuple[bool, str, float]:
    """:func:`rdu_passes` of one size: ``(fits, reason, time_s)``."""
    fits, reason, time_s = rdu_passes(chip, model, phase, [int(batch)], [int(seq_len)], tp, mode)
    return bool(fits[0]), str(reason[0]), float(time_s[0])


def rdu_pass_reference(chip: RduChip, model: str, phase: str, batch: int, seq_len: int, tp: int, mode: str) -> RduResult:
    """:func:`rdu_pass` on the full graph (every layer built, flattened and planned): the reference."""
    return evaluate(workload_graph(get_model(model), phase, batch, seq_len, tp), chip, mode)


def rdu_prefill_s(chip, model: str, batch: int, tp: int, prompt: int, mode: str) -> float:
    """Time (s) of the prompt pass of ``model`` on one SN40L socket ``chip`` of a ``tp``-socket group
    (NaN when it does not fit)."""

    return rdu_pass(chip, model, "prefill", batch, prompt, tp, mode)[2]


def rdu_decode_s(chip, model: str, batch: int, tp: int, prompt: int, gen: int, mode: str) -> float:
    """Mean time (s) of one of ``gen`` decode steps after ``prompt`` tokens (evaluated at context L + G/2)."""

    return rdu_pass(chip, model, "decode", batch, prompt + gen // 2, tp, mode)[2]


def _rdu_group(rows: pd.DataFrame, platform: str, model: str, tp: int, mode: str, stack: Stack):
    """``(ttft_s, decode_s, fits, reason)`` of SN40L rows that pass the closed-form memory check: kernel
    time plus the stack's runtime work (per request, per pass, per all-reduce; none for ``kernels``)."""
    chip = rdu_chip(platform, tp)
    batch = rows["batch"].to_numpy()
    prompt = rows["prompt"].to_numpy()
    ok_p, why_p, ttft = rdu_passes(chip, model, "prefill", batch, prompt, tp, mode)
    ok_d, why_d, dec = rdu_passes(chip, model, "decode", batch, prompt + rows["gen"].to_numpy() // 2, tp, mode)
    if stack.has_runtime:
        step, request = stack_work(stack, model, batch.astype(float), prompt.astype(float), tp)
        ttft = ttft + step + request
        dec = dec + step
    fits = ok_p & ok_d
    reason = np.where(ok_p, why_d, why_p)
    ttft[~fits] = np.nan
    dec[~fits] = np.nan
    return ttft, dec, fits, reason


# ------------------------------------------------------------------------------- public API
def _check_sizes(df: pd.DataFrame) -> None:
    """Sizes are whole numbers within :data:`SIZE_LIMITS` (the error names the first bad row), then
    converted to int64; rows of a known model also get the context-window and int64 KV checks."""
    for col in ("batch", "tp", "prompt", "gen"):
        raw = df[col]
        limit = SIZE_LIMITS[col]
        if raw.dtype == bool:
            bad = np.ones(len(raw), dtype=bool)
        elif pd.api.types.is_integer_dtype(raw.dtype) or pd.api.types.is_float_dtype(raw.dtype):
            values = raw.to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(values) | (values < 1) | (values > limit) | (values != np.round(values))
        else:  # object columns: check each value (Python ints of any size, strings, None, bools, ...)
            bad = np.zeros(len(raw), dtype=bool)
            for i, v in enumerate(raw.to_numpy()):
                try:
                    whole(col, v, 1, limit)
                except ConfigError:
                    bad[i] = True
        if bad.any():
            i = int(np.argmax(bad))
            whole(f"row {i}: {col}", raw.iloc[i], 1, limit)
            raise ConfigError(f"row {i}: {col}", raw.iloc[i], f"a whole number from 1 to {limit:,}")
        df[col] = np.array([int(v) for v in raw], dtype=np.int64) if raw.dtype == object else raw.astype(np.int64)
    for model, group in df.groupby("model", sort=False):
        if is_config_path(model) or (isinstance(model, str) and model in load_models()):
            idx = group.index.to_numpy()
            _check_context(lambda i: f"row {int(idx[i])}: ", model, group["batch"], group["prompt"], group["gen"])


def _plain_dtypes(df: pd.DataFrame) -> None:
    """Input columns of pandas' nullable (Int64, Float64, boolean, string) or categorical dtypes as plain
    object or float columns (missing values as None), so the checks below see ordinary values; a column of
    another kind (lists, dicts) is named in the error of the row that holds it."""
    for col in INPUT_COLUMNS:
        dtype = df[col].dtype
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_extension_array_dtype(dtype):
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    for col, allowed in (("platform", "a platform name or .yaml path (a str)"), ("model", "a model name (a str)"),
                         ("execution", "an execution mode name (a str) or None")):
        for i, v in enumerate(df[col].to_numpy()):
            if isinstance(v, str) or (col == "execution" and (v is None or (isinstance(v, float) and math.isnan(v)))):
                continue
            raise ConfigError(f"row {i}: {col}", type(v).__name__, allowed)


def predict(frame: pd.DataFrame, constants=None) -> pd.DataFrame:
    """Add ``ttft_ms``, ``decode_ms_per_token``, ``total_ms``, ``weight_bytes``, ``fits``, ``reason``,
    ``precision``, ``kv_precision`` and ``tokens_per_s_per_user`` to a frame with columns platform, model,
    batch, tp, prompt, gen, execution, stack (missing columns take the defaults: batch 1, tp 1, prompt 128,
    gen 128, the platform's default stack and its execution; see :func:`rdusim.core.stacks.resolve_stack`
    for how execution and stack combine) and optionally ``precision``, ``kv_precision`` (bf16 unless told),
    ``hot_experts_in_hbm`` (SN40L, MoE models) and ``draft``, ``draft_tokens``, ``acceptance``
    (speculative decoding, :mod:`rdusim.scenarios.speculative`). ``model`` is a zoo name or a path to a
    Hugging Face config.json. Dense BF16 rows use the operator-graph templates; MoE models and other
    formats the closed-form layer model (:mod:`rdusim.scenarios.closed_form`). The ``execution`` and
    ``stack`` columns of the result name what each row used. Invalid rows raise :class:`ConfigError`
    naming the row and field."""
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError("frame", type(frame).__name__, "a pandas DataFrame with columns " + ", ".join(INPUT_COLUMNS))
    for col, allowed in (("platform", "a platform name or .yaml path (a str)"), ("model", "a model name (a str)")):
        if col in frame:
            for i, v in enumerate(frame[col].to_numpy()):
                if not isinstance(v, str):
                    raise ConfigError(f"row {i}: {col}", type(v).__name__, allowed)
    if "model" in frame and (any(c in frame for c in EXTENSION_COLUMNS) or any(map(is_moe, pd.unique(frame["model"])))):
        return predict_extended(frame, constants, _predict_dense)
    out = _predict_dense(frame, constants)
    out["precision"] = DEFAULT_PRECISION
    out["kv_precision"] = DEFAULT_PRECISION
    out["tokens_per_s_per_user"] = 1e3 / out["decode_ms_per_token"]
    return out


def _predict_dense(frame: pd.DataFrame, constants=None) -> pd.DataFrame:
    """:func:`predict` of dense BF16 rows (the operator-graph templates)."""

    const = gpu_constants(constants)
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError("frame", type(frame).__name__, "a pandas DataFrame with columns " + ", ".join(INPUT_COLUMNS))
    if frame.columns.duplicated().any():
        raise ConfigError("frame columns", [str(c) for c in frame.columns[frame.columns.duplicated()]], "each column once")
    if "platform" not in frame or "model" not in frame:
        raise ConfigError("frame columns", sorted(map(str, frame.columns)), "at least platform and model, plus " + ", ".join(INPUT_COLUMNS[2:]))
    df = frame.copy().reset_index(drop=True)
    for col, default in DEFAULTS.items():
        if col not in df:
            df[col] = default
    _plain_dtypes(df)
    _check_sizes(df)
    for col in ("execution", "stack"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    keys = ["platform", "model", "tp", "execution", "stack"]
    kinds = {}
    resolved = {col: df[col].to_numpy(dtype=object, copy=True) for col in ("execution", "stack")}
    for combo, idx in df.groupby(keys, dropna=False, sort=False).indices.items():
        platform, model, tp, execution, stack = (None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                                                 for v in combo)
        try:
            row = check_row(platform, model, 1, tp, 1, 1, execution, stack)
        except ConfigError as err:
            raise ConfigError(f"row {int(idx[0])}: {err.field}", err.given, err.allowed) from None
        resolved["execution"][idx] = row["execution"]
        resolved["stack"][idx] = row["stack"]
        kinds[(platform, model, int(tp), row["execution"], row["stack"])] = row["kind"]
    df["execution"], df["stack"] = resolved["execution"], resolved["stack"]
    n = len(df)
    ttft = np.full(n, np.nan)
    dec = np.full(n, np.nan)
    fits = np.ones(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)
    wbytes = np.zeros(n)
    for (platform, model, tp, mode, stack), group in df.groupby(keys, sort=False):
        idx = group.index.to_numpy()
        ok, why = memory_fits(platform, model, int(tp), group["batch"].to_numpy(), group["prompt"].to_numpy(),
                              group["gen"].to_numpy())
        fits[idx] = ok
        reasons[idx] = why
        wbytes[idx] = weight_bytes(get_model(model))
        run = group[ok]
        if run.empty:
            continue
        at = run.index.to_numpy()
        if kinds[(platform, model, int(tp), mode, stack)] == "gpu":
            ttft[at], dec[at] = _gpu_group(run, platform, model, int(tp), mode, const, load_stack(stack))
        else:
            t, d, f, r = _rdu_group(run, platform, model, int(tp), mode, load_stack(stack))
            ttft[at], dec[at] = t, d
            fits[at], reasons[at] = f, r
    unresolved = fits & ~(np.isfinite(ttft) & np.isfinite(dec) & (ttft > 0) & (dec > 0))
    fits[unresolved] = False  # never a NaN or infinite time with fits: true
    reasons[unresolved] = "no finite time (the platform's values give an infinite or undefined time)"
    ttft[~fits], dec[~fits] = np.nan, np.nan
    df["ttft_ms"] = ttft * 1e3
    df["decode_ms_per_token"] = dec * 1e3
    df["total_ms"] = df["ttft_ms"] + df["gen"] * df["decode_ms_per_token"]
    df["weight_bytes"] = wbytes.astype(np.int64)
    df["fits"] = fits
    df["reason"] = reasons
    df.index = frame.index
    return df


def predict_one(platform: str, model: str, batch: int = 1, tp: int = 1, prompt: int = 128, gen: int = 128,
                execution: str | None = None, stack: str | None = None, constants=None, **extensions) -> dict:
    """One prediction as a dict (the CLI's JSON object); ``extensions`` are the optional columns of
    :func:`predict` (precision, kv_precision, hot_experts_in_hbm, draft, draft_tokens, acceptance)."""
    request = {"platform": platform, "model": model, "batch": batch, "tp": tp, "prompt": prompt, "gen": gen,
               "execution": execution, "stack": stack}
    for key in extensions:
        if key not in EXTENSION_COLUMNS:
            raise ConfigError("predict_one argument", key, ", ".join(EXTENSION_COLUMNS))
    extensions = {k: v for k, v in extensions.items() if v is not None}
    if isinstance(batch, str) and batch.strip().lower() == "max":  # a maximum-throughput configuration
        def fits(b):
            return predict_one(platform, model, b, tp, prompt, gen, execution, stack, constants, **extensions)["fits"]
        request["batch"] = max(1, largest_batch(fits))
    if extensions or is_moe(model):
        return _one_extended(request, extensions, constants)
    check_row(**request)  # errors without the row number of a frame
    row = predict(pd.DataFrame([request]), constants).iloc[0]
    out = {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in INPUT_COLUMNS}
    for k in RESULT_COLUMNS + ("precision", "kv_precision", "tokens_per_s_per_user"):
        v = row[k]
        out[k] = None if isinstance(v, float) and math.isnan(v) else (v.item() if hasattr(v, "item") else v)
    return out


# ------------------------------------------------------------------------------- per-step costs
def step_times(platform: str, model: str, tp: int, execution: str | None, batch, seq,
               stack: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(prefill_s, decode_s)`` arrays: the prompt pass of ``batch[i]`` sequences of ``seq[i]`` tokens, and one
    decode step of ``batch[i]`` sequences at context ``seq[i]``, by the same templates and serving stack as
    :func:`predict` (a row's ``ttft_ms`` and ``decode_ms_per_token`` at prompt ``seq`` and gen 1), without its
    memory check: a serving engine bounds its KV cache itself. SN40L passes that do not place are NaN.
    Used by the serving engine (:mod:`rdusim.scenarios.engine`) to tabulate its step costs once."""
    row = check_row(platform, model, 1, tp, 1, 1, execution, stack)
    rows = pd.DataFrame({"batch": np.asarray(batch, dtype=np.int64), "prompt": np.asarray(seq, dtype=np.int64)})
    rows["gen"] = 1  # decode at context prompt + 1 // 2 = prompt
    mode, used = row["execution"], load_stack(row["stack"])
    if row["kind"] == "gpu":
        return _gpu_group(rows, row["platform"], model, int(tp), mode, gpu_constants(), used)
    pre, dec, _, _ = _rdu_group(rows, row["platform"], model, int(tp), mode, used)
    return pre, dec


# ------------------------------------------------------------------------------- MoE, precision, speculative
def _one_extended(request: dict, extensions: dict, constants) -> dict:
    """:func:`predict_one` of a row with optional columns or an MoE model (errors without a row number)."""
    try:
        row = predict(pd.DataFrame([{**request, **extensions}]), constants).iloc[0]
    except ConfigError as err:
        field = err.field.split(": ", 1)[1] if err.field.startswith("row 0: ") else err.field
        raise ConfigError(field, err.given, err.allowed) from None
    keys = INPUT_COLUMNS + tuple(k for k in EXTENSION_COLUMNS if k in row.index) + RESULT_COLUMNS + (
        "tokens_per_s_per_user", "tokens_per_verify", "experts_touched")
    out = {}
    for k in dict.fromkeys(keys):
        if k not in row.index:
            continue
        v = row[k]
        v = v.item() if hasattr(v, "item") else v
        out[k] = None if (isinstance(v, float) and math.isnan(v)) else v
    return out
