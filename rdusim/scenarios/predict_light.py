"""One prediction without numba or pandas: the light half of :mod:`rdusim.scenarios.predict`.

``rdusim predict`` for a GPU row imports only this module (numpy and YAML): the row is validated
(:func:`check_row`), checked against HBM (:func:`gpu_memory_fits`) and timed from its kernel template
(per-kernel matmul FLOPs, bytes and collective bytes as exact polynomials of batch and lengths, see
:mod:`rdusim.scenarios.predict`) by :func:`gpu_rows_reference`, the numpy twin of the numba row loop.
Templates are read from a cache on disk (:func:`load_gpu_template`), written by
:func:`rdusim.scenarios.predict.gpu_template` the first time one is built; a row whose template is not
there yet, and every SN40L row, goes through :mod:`rdusim.scenarios.predict` (:func:`predict_one_light`
returns None). :func:`gpu_times` turns kernel sums into ``(ttft, decode)`` for both paths.

The cache file of a template is named by a SHA-256 over everything the template is computed from:
the model's configuration, tp, the execution mode, numpy's version and the source of every module
that builds or lowers the graphs (:data:`TEMPLATE_SOURCES`); an edit to any of them names another file,
so a cached template is never stale. Location: ``$RDUSIM_CACHE_DIR`` (empty: no cache), else
``$XDG_CACHE_HOME/rdusim``, else ``~/.cache/rdusim``; a cache that cannot be written is skipped.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from baselines.gpu import ENGINE_STACK, GpuConstants, GpuDevice
from benchmarks.models import get_model, is_config_path, kv_bytes_per_token, load_models, weight_bytes
from benchmarks.moe import load_moe_models
from rdusim.core.checks import nearest, whole
from rdusim.core.errors import ConfigError
from rdusim.core.paths import PACKAGE_DIR
from rdusim.core.platforms import MAX_DEVICES, builtin_names, load_platform
from rdusim.core.stacks import Stack, load_stack, resolve_stack

GPU_MODES = ("eager", "cuda-graph", "fused")
RDU_MODES = ("unfused", "fused-so", "fused-ho")
BEST_MODE = {"gpu": "fused", "rdu": "fused-ho"}
INPUT_COLUMNS = ("platform", "model", "batch", "tp", "prompt", "gen", "execution", "stack")
DEFAULTS = {"batch": 1, "tp": 1, "prompt": 128, "gen": 128, "execution": None, "stack": None}
RESULT_COLUMNS = ("ttft_ms", "decode_ms_per_token", "total_ms", "weight_bytes", "fits", "reason")

# ------------------------------------------------------------------------------- validation
# Upper bounds of the sizes before the model is known; prompt + gen is then bounded by the model's context
# window, and batch x tokens x KV bytes per token by int64 (KV byte counts are int64 arrays).
SIZE_LIMITS = {"batch": 2**30, "tp": MAX_DEVICES, "prompt": 2**31, "gen": 2**31}
KV_BYTES_LIMIT = 2**62


def _positive_int(field: str, value) -> int:
    return whole(field, value, 1, SIZE_LIMITS.get(field, 2**31))


def _check_context(where: str, model: str, batch, prompt, gen) -> None:
    """prompt + gen within the model's context window, and the KV bytes of the batch within int64.

    Arguments may be arrays (a frame's rows); ``where`` is a prefix such as ``"row 3: "``, or a
    callable giving it for the first bad row index.
    """
    m = get_model(model)
    batch, prompt, gen = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (batch, prompt, gen))
    tokens = prompt + gen
    if m.context_window:
        over = tokens > m.context_window
        if over.any():
            i = int(np.argmax(over))
            raise ConfigError(f"{where(i) if callable(where) else where}prompt + gen", int(tokens[i]),
                              f"at most {m.context_window:,} tokens (the context window of {model})")
    kv = kv_bytes_per_token(m) * batch * tokens
    over = kv > KV_BYTES_LIMIT
    if over.any():
        i = int(np.argmax(over))
        most = int(KV_BYTES_LIMIT // (kv_bytes_per_token(m) * tokens[i]))
        raise ConfigError(f"{where(i) if callable(where) else where}batch", int(batch[i]),
                          f"at most {most:,} for {model} at {int(tokens[i]):,} tokens (its KV-cache bytes must fit int64)")


def check_model(model) -> None:
    """A zoo model name or a path to a Hugging Face config.json that maps (else the error names the field)."""
    if is_config_path(model):
        get_model(model)
    elif not isinstance(model, str) or (model not in load_models() and model not in load_moe_models()):
        names = [*load_models(), *load_moe_models()]
        raise ConfigError("model", model, ", ".join(load_models()) + "; mixture of experts: "
                          + ", ".join(load_moe_models()) + "; or a path to a Hugging Face config.json"
                          + (nearest(model, names) if isinstance(model, str) else ""))


def check_row(platform: str, model: str, batch, tp, prompt, gen, execution, stack=None) -> dict:
    """Validate one prediction request; returns it normalised, with its ``stack`` and ``execution``
    resolved (:func:`rdusim.core.stacks.resolve_stack`). Errors name the field and the allowed values."""
    try:
        p = load_platform(str(platform))
    except ConfigError as err:
        if err.field != "platform":  # a platform file with a bad field: name that field, not the list of names
            raise
        raise ConfigError("platform", platform, ", ".join(builtin_names()) + " or a path to a platform .yaml") from None
    check_model(model)
    row = {"platform": str(platform), "model": model, "batch": _positive_int("batch", batch),
           "tp": _positive_int("tp", tp), "prompt": _positive_int("prompt", prompt), "gen": _positive_int("gen", gen)}
    if row["tp"] > p.devices:
        raise ConfigError("tp", row["tp"], f"1 to {p.devices} (devices of {p.name})")
    link = "nvlink_bandwidth" if p.kind == "gpu" else "p2p_bandwidth"
    if row["tp"] > 1 and link not in p.device:
        raise ConfigError("tp", row["tp"], f"1 on {p.name}: its device has no {link}_GBps, the device-to-device "
                          "link tensor parallelism needs")
    m = get_model(model)
    for field, total in (("heads", m.heads), ("ffn", m.ffn), ("vocab", m.vocab)):
        if total % row["tp"]:
            raise ConfigError("tp", row["tp"], f"a divisor of {model}.{field} = {total}")
    _check_context("", model, row["batch"], row["prompt"], row["gen"])
    row["stack"], _, row["execution"] = resolve_stack(p.kind, p.default_stack, execution, stack)
    row["kind"] = p.kind
    return row


# ------------------------------------------------------------------------------- memory check
def memory_need(platform: str, model: str, tp: int, batch, prompt, gen):
    """Bytes one device needs (weights and KV cache at the last token) and its capacity (HBM for GPUs,
    HBM + DDR for RDUs, where the KV cache must also fit HBM: see
    :func:`rdusim.scenarios.predict.memory_fits`).

    ``batch``, ``prompt`` and ``gen`` may be arrays. The embedding is replicated on every device, the
    rest of the weights is split ``tp`` ways, and KV heads are split while there are enough of them.
    """
    p = load_platform(platform)
    m = get_model(model)
    embedding = m.vocab * m.hidden * 2
    weights = (weight_bytes(m) - embedding) / tp + embedding
    kv_heads = max(1, m.kv_heads // tp)
    positions = np.asarray(prompt) + np.asarray(gen)
    if m.sliding_window:
        positions = np.minimum(positions, m.sliding_window)
    kv = 2 * m.layers * kv_heads * m.head_dim * 2 * np.asarray(batch) * positions
    capacity = p.dev("hbm_capacity") + (p.device.get("ddr_capacity", 0.0) if p.kind == "rdu" else 0.0)
    return weights, kv, capacity


def gpu_memory_fits(platform: str, model: str, tp: int, batch, prompt, gen) -> tuple[np.ndarray, np.ndarray]:
    """``(fits, reason)`` arrays of GPU rows: weights + KV cache <= HBM (reasons empty where a row fits)."""
    weights, kv, capacity = memory_need(platform, model, tp, batch, prompt, gen)
    kv = np.atleast_1d(np.asarray(kv, dtype=float))
    reason = np.full(kv.shape, "", dtype=object)
    need = weights + kv
    ok = need <= capacity
    bad = np.flatnonzero(~ok)
    w = weights / 1e9
    tail = f") > {capacity / 1e9:.0f} GB HBM"
    reason[bad] = [f"needs {n:.1f} GB per device (weights {w:.1f}, KV {k:.1f}{tail}"
                   for n, k in zip((need[bad] / 1e9).tolist(), (kv[bad] / 1e9).tolist())]
    return ok, reason


# ------------------------------------------------------------------------------- GPU constants
_ACTIVE_CONSTANTS = [None]
_DEPENDENT_CACHES: list = []


def clears_with_gpu_constants(cached):
    """Register an ``lru_cache``-wrapped function whose results depend on the active GPU constants;
    :func:`use_gpu_constants` clears it. Returns ``cached`` (usable as a decorator)."""
    _DEPENDENT_CACHES.append(cached)
    return cached


def use_gpu_constants(constants) -> None:
    """Make ``constants`` (a :class:`baselines.gpu.GpuConstants`) the default of every later prediction in
    this process; the pipeline passes the constants its calibration rule fitted."""
    _ACTIVE_CONSTANTS[0] = constants
    for cached in _DEPENDENT_CACHES:
        cached.cache_clear()


def gpu_constants(constants=None) -> GpuConstants:
    """The GPU constants of a prediction: ``constants``, else those of :func:`use_gpu_constants`, else the
    packaged ones."""
    return constants or _ACTIVE_CONSTANTS[0] or GpuConstants.load()


# ------------------------------------------------------------------------------- GPU templates
@dataclass
class GpuTemplate:
    """Per-kernel coefficients (kernels x basis) of matmul FLOPs, bytes and collective bytes."""

    prefill: np.ndarray   # (3, K, 6)
    decode: np.ndarray    # (3, K, 4)
    prefill_collectives: np.ndarray
    decode_collectives: np.ndarray
    prefill_ops: np.ndarray
    decode_ops: np.ndarray
    decode_attention: np.ndarray  # 1.0 for a decode kernel of attention over the KV cache, else 0.0


# What a GPU template is computed from, besides the model's configuration, tp and mode: the graph
# builders and model zoo, the op table and its accounting, the GPU lowering, and the template fit.
TEMPLATE_SOURCES = ("benchmarks", "baselines", "rdusim/core", "rdusim/scenarios/predict.py",
                    "rdusim/scenarios/predict_light.py")
CACHE_FORMAT = "gpu-template-3"  # 2: with a SHA-256 of the arrays; 3: decode attention kernels marked


@lru_cache(maxsize=None)
def _sources_digest() -> str:
    """SHA-256 over the path and bytes of every ``.py`` and ``.yaml`` file of :data:`TEMPLATE_SOURCES`."""
    root = PACKAGE_DIR.parent
    h = hashlib.sha256(f"{CACHE_FORMAT} numpy {np.__version__}".encode())
    for entry in TEMPLATE_SOURCES:
        path = root / entry
        files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.suffix in (".py", ".yaml"))
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def cache_dir() -> Path | None:
    """Where templates are cached (see the module docstring), or None when ``RDUSIM_CACHE_DIR`` is empty."""
    env = os.environ.get("RDUSIM_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rdusim"


def template_path(model: str, tp: int, mode: str) -> Path | None:
    """The cache file of a template, named by the hash of what it is computed from."""
    where = cache_dir()
    if where is None:
        return None
    key = hashlib.sha256(f"{_sources_digest()} {get_model(model)!r} tp={int(tp)} mode={mode}".encode()).hexdigest()
    label = "".join(c if c.isalnum() or c in ".-_" else "_" for c in Path(model).name)[:64]  # a config path: its file name
    return where / f"{CACHE_FORMAT}-{label}-tp{int(tp)}-{mode}-{key[:32]}.npz"


def _template_digest(arrays: dict) -> np.ndarray:
    """SHA-256 over the name, dtype, shape and bytes of every array of a template (stored beside them)."""
    h = hashlib.sha256(CACHE_FORMAT.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name} {a.dtype.str} {a.shape}".encode() + a.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def _valid_template(arrays: dict) -> bool:
    """A template of the expected shape: (3, K, 6) prefill and (3, K', 4) decode coefficients with per-kernel
    vectors of lengths K and K', all float64 and finite."""
    names = [f.name for f in fields(GpuTemplate)]
    if set(arrays) != set(names) or any(arrays[n].dtype != np.float64 for n in names):
        return False
    for phase, terms in (("prefill", 6), ("decode", 4)):
        coef = arrays[phase]
        if coef.ndim != 3 or coef.shape[0] != 3 or coef.shape[2] != terms or coef.shape[1] < 1:
            return False
        parts = ("collectives", "ops", "attention") if phase == "decode" else ("collectives", "ops")
        if any(arrays[f"{phase}_{part}"].shape != (coef.shape[1],) for part in parts):
            return False
    return all(np.all(np.isfinite(arrays[n])) for n in names)


def load_gpu_template(model: str, tp: int, mode: str) -> GpuTemplate | None:
    """The cached template of ``model`` on one of ``tp`` GPUs under ``mode``, or None if not cached.

    An entry that is truncated, corrupt (its SHA-256 does not match), of another shape or holds NaN is
    discarded (deleted when possible) and None returned, so the template is rebuilt; it is never used."""
    path = template_path(model, tp, mode)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        digest = arrays.pop("sha256", None)
        if digest is not None and _valid_template(arrays) and np.array_equal(digest, _template_digest(arrays)):
            return GpuTemplate(**arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError):
        pass
    with contextlib.suppress(OSError):  # discard the bad entry: the caller rebuilds and stores it
        path.unlink()
    return None


_WARNED: list[str] = []


def _warn_once(where: Path, exc: OSError) -> None:
    if not _WARNED:
        _WARNED.append(str(where))
        print(f"rdusim: warning: cannot write the template cache {where} ({exc.strerror or exc.__class__.__name__}); "
              "running without it (set RDUSIM_CACHE_DIR to a writable folder, or empty for no cache)", file=sys.stderr)


def store_gpu_template(model: str, tp: int, mode: str, tpl: GpuTemplate) -> None:
    """Write a template to the cache (atomically: a reader sees the whole file or none) with a SHA-256 of
    its arrays; when the cache cannot be written, one warning for the process and no cache."""
    path = template_path(model, tp, mode)
    if path is None:
        return
    arrays = {f.name: np.asarray(getattr(tpl, f.name), dtype=np.float64) for f in fields(GpuTemplate)}
    if not _valid_template(arrays):
        return  # never cache a template that would not be read back
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, sha256=_template_digest(arrays), **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        _warn_once(path.parent, exc)


# ------------------------------------------------------------------------------- GPU rows
def _pass_times_reference(coef, collectives, ops, attn, basis, gemm, bw, attn_gemm, attn_bw, fixed, nvlink,
                          allreduce_lat, host, eager):
    """Kernel-time sums of one pass for rows x basis terms ``basis`` (a list of row arrays): the numpy
    twin of :func:`rdusim.scenarios.predict._gpu_time`, the same operations in the same order."""
    flops = nbytes = coll = 0.0
    for j, x in enumerate(basis):
        flops = flops + coef[0, :, j] * x
        nbytes = nbytes + coef[1, :, j] * x
        coll = coll + coef[2, :, j] * x
    t = fixed + np.where(attn > 0.0, np.maximum(flops / attn_gemm, nbytes / attn_bw), np.maximum(flops / gemm, nbytes / bw))
    if nvlink > 0.0:
        t = t + (collectives * allreduce_lat + coll / nvlink)
    if eager:
        t = np.maximum(t, host * ops)
    return np.cumsum(t, axis=1)[:, -1]  # summed kernel after kernel, as the numba loop does


def gpu_rows_reference(pcoef, pcoll, pops, dcoef, dcoll, dops, dattn, batch, prompt, ctx, gemm, bw, attn_gemm, attn_bw,
                       fixed, nvlink, allreduce_lat, host, eager):
    """``(prefill, decode)`` kernel-time sums of rows ``(batch[i], prompt[i], ctx[i])``: the numpy twin of
    :func:`rdusim.scenarios.predict._gpu_rows` (rows x kernels arrays: for a few rows)."""
    b, length, c = (np.asarray(v, dtype=float)[:, None] for v in (batch, prompt, ctx))
    one = np.ones_like(b)
    pb = [one, b, length, b * length, length * length, b * length * length]
    db = [one, b, c, b * c]
    pattn = np.zeros(pcoef.shape[1])
    return (_pass_times_reference(pcoef, pcoll, pops, pattn, pb, gemm, bw, attn_gemm, attn_bw, fixed, nvlink,
                                  allreduce_lat, host, eager),
            _pass_times_reference(dcoef, dcoll, dops, dattn, db, gemm, bw, attn_gemm, attn_bw, fixed, nvlink,
                                  allreduce_lat, host, eager))


def gpu_times(tpl: GpuTemplate, rows, platform: str, model: str, tp: int, mode: str, const: GpuConstants,
              batch, prompt, gen, stack: Stack | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(ttft_s, decode_s)`` of GPU rows of one (platform, model, tp, mode, stack) group: the prompt pass,
    and the mean decode step at context L + G/2, each with the stack's runtime work per pass
    (:meth:`~rdusim.core.stacks.Stack.pass_time`; its work per all-reduce joins the kernel model's
    all-reduce latency) and the prompt pass with its work per request
    (:meth:`~rdusim.core.stacks.Stack.request_time`). ``rows`` sums the kernel times of the template
    (:func:`gpu_rows_reference`, or its numba twin); this is the one place both paths turn those sums
    into a request's times."""
    if stack is None:  # as before stacks: the fused mode with NeMo 2023's runtime work, other modes kernels only
        stack = load_stack(ENGINE_STACK if mode == "fused" else "kernels")
    dev = GpuDevice.from_platform(platform, const)
    window = get_model(model).sliding_window
    prompt = np.asarray(prompt)
    ctx = (prompt + np.asarray(gen) // 2).astype(float)
    if window:
        ctx = np.minimum(ctx, window)
    host = max(dev.eager_host, dev.eager_launch)  # the platform's own fitted eager_host, else const's
    pops, dops, eager = tpl.prefill_ops, tpl.decode_ops, mode == "eager"
    if stack.launch > 0 and not eager:  # a stack launching each kernel from the host: one launch per kernel
        host = stack.launch * dev.clock_scale
        pops, dops, eager = np.ones_like(pops), np.ones_like(dops), True
    fixed, gemm, bw = dev.rates(mode)
    attn_gemm, attn_bw = dev.decode_attention_rates(mode, stack.kernel_term("attention_fp32_efficiency", None),
                                                    stack.kernel_term("kv_stream_efficiency", None))
    batch = np.asarray(batch, dtype=float)
    # every scalar as a float (and the flag as a bool): one compiled signature of the numba twin for
    # every caller, so that a kernel compiled once (rdusim.scenarios.warm) is found in numba's cache;
    scalars = [float(x) for x in (gemm, bw, attn_gemm, attn_bw, fixed, dev.collective_bandwidth if tp > 1 else 0.0,
                                  dev.allreduce_latency + stack.collective, host)]
    # and every array C-contiguous: a template just built holds strided views, one read from the disk
    # cache does not
    arrays = [np.ascontiguousarray(a, dtype=float) for a in (
        tpl.prefill, tpl.prefill_collectives, pops, tpl.decode, tpl.decode_collectives, dops, tpl.decode_attention,
        batch, prompt, ctx)]
    ttft, dec = rows(*arrays, *scalars, bool(eager))
    step = stack.pass_time(batch, tp)  # the stack's runtime work per pass
    return ttft + step + stack.request_time(batch, prompt), dec + step


def predict_one_light(platform: str, model: str, batch: int = 1, tp: int = 1, prompt: int = 128, gen: int = 128,
                      execution: str | None = None, stack: str | None = None, constants=None) -> dict | None:
    """:func:`rdusim.scenarios.predict.predict_one` of a GPU row whose template is cached, the same dict
    to the bit; None for an SN40L row or a template not cached yet. Bad input raises the same errors."""
    row = check_row(platform, model, batch, tp, prompt, gen, execution, stack)
    if row["kind"] != "gpu":
        return None
    tpl = load_gpu_template(model, row["tp"], row["execution"])
    if tpl is None:
        return None
    b, n, L, G = row["batch"], row["tp"], row["prompt"], row["gen"]
    ok, why = gpu_memory_fits(row["platform"], model, n, b, L, G)
    out = {k: row[k] for k in INPUT_COLUMNS}
    out["platform"] = platform
    if ok[0]:
        ttft, dec = gpu_times(tpl, gpu_rows_reference, row["platform"], model, n, row["execution"],
                              gpu_constants(constants), [b], [L], [G], load_stack(row["stack"]))
        ttft_ms, dec_ms = float(ttft[0] * 1e3), float(dec[0] * 1e3)
        out.update(ttft_ms=ttft_ms, decode_ms_per_token=dec_ms, total_ms=ttft_ms + G * dec_ms)
        if not (np.isfinite(ttft_ms) and np.isfinite(dec_ms) and ttft_ms > 0 and dec_ms > 0):
            ok = np.array([False])  # never a NaN or infinite time with fits: true (as predict)
            why = np.array(["no finite time (the platform's values give an infinite or undefined time)"])
    if not ok[0]:
        out.update(ttft_ms=None, decode_ms_per_token=None, total_ms=None)
    out.update(weight_bytes=int(float(weight_bytes(get_model(model)))), fits=bool(ok[0]), reason=str(why[0]))
    dec = out["decode_ms_per_token"]
    out.update(precision="bf16", kv_precision="bf16", tokens_per_s_per_user=None if dec is None else 1e3 / dec)
    return out
