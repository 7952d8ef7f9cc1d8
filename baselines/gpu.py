"""GPU baselines: the same operator graphs lowered to GPU kernels and costed on a roofline.

This module holds the constants, the device and the kernel cost; lowering a graph to kernels and
evaluating one graph are in :mod:`baselines.lowering` (which needs numba; this module does not).

Execution modes (issue "GPU baselines"):

* ``eager``: one kernel per operator, each issued from the host (PyTorch eager). The host and the
  GPU overlap, so an operator costs the longer of its host time and its kernel time.
* ``cuda-graph``: the same kernels replayed from a CUDA graph: no host time per kernel.
* ``fused``: an optimised engine (TensorRT-LLM, NeMo, LMDeploy): its kernels, each matmul with its
  element-wise prologue and epilogue, attention as one fused kernel (no score tensor in HBM, no
  repeated KV heads), replayed from a graph; and the engine's runtime work (issue 10): per request
  (:func:`request_overhead`), per step and per sequence-step (:func:`step_overhead`), fitted to NeMo's
  published H100 latencies (``baselines.calibration``).

Per kernel (issue 16): ``t = t_fixed + max(matmul FLOPs / GEMM rate, bytes / streaming rate)``, plus,
for an all-reduce over ``w`` GPUs, ``latency + 2 (w-1)/w bytes / NVLink bw`` (the latency fitted on the
H100, carried to other GPUs by SM clock).

* ``t_fixed`` is what every kernel pays whatever its size: the gap between kernels replayed from a CUDA
  graph (measured per GPU, ``launch_graph_us``; for a GPU never measured, the H100's value scaled by SM
  clock, since the front end that dispatches kernels runs at that clock) plus ``kernel_ramp``, the
  memory-pipeline ramp-up and tail beyond that gap (a time, carried unchanged: HBM latency, not a rate).
* The streaming rate is the GPU's copy bandwidth (measured, else datasheet x the H100's
  measured/datasheet ratio) times a kernel-class efficiency: ``stream_efficiency`` for PyTorch's GEMV and
  element-wise kernels (eager, cuda-graph), ``engine_stream_efficiency`` for an optimised engine's
  (fused). Both are <= 1, so no kernel streams faster than a copy.
* Together these give a size-dependent effective rate ``bytes / t = rate x bytes / (bytes + t_fixed x rate)``
  (Hockney's latency-bandwidth form): it saturates towards the sustained rate for large kernels, and the
  size at which half of it is reached, ``t_fixed x rate``, grows with the GPU's bandwidth, so the same
  small kernels lose more on a faster GPU.
* A GPU's own measured curve (``device.curves`` in its platform file, written by ``rdusim calibrate-gpu``)
  replaces the carried values: the GEMV sweep gives ``t_fixed`` and the PyTorch streaming rate, the GEMM
  sweep the GEMM rate. Wave quantisation over the SM count is not modelled: the H100 file's prefill
  shapes fill whole waves to within a few percent, so the data cannot support it.
* A GPU's own fitted constants (``device.fitted`` in its platform file, written by ``rdusim calibrate-gpu
  --models`` or ``--from-json``: ``stream_efficiency``, ``gemm_efficiency``, ``kernel_ramp``, ``eager_host``
  fitted to that GPU's own prefill and decode timings, as :mod:`baselines.calibration` fits the H100's)
  replace the packaged ones for that GPU, and take precedence over its curves: they were fitted to whole
  model runs, which is what a prediction is, with the curves left out.

Decode attention of a serving stack (issue 19): a stack file's ``kernel`` block may cost the kernels of
attention over the KV cache at its own rates (:meth:`GpuDevice.decode_attention_rates`: a share of the
CUDA cores' FP32 peak, the KV cache at a share of the copy rate); :mod:`rdusim.scenarios.predict_light`
applies it to the kernels its templates mark (``GpuKernels.kv_attention``). :func:`kernel_times` and
:func:`total_time` (the full-graph evaluation, the calibration's NeMo and PyTorch paths) and the closed-form
MoE / non-BF16 rows keep the plain cost.

Constants: ``baselines/data/gpu_constants.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from rdusim.core.loader import load_yaml, mapping
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import Platform, load_platform
from rdusim.core.precision import gemm_peak, weight_precision
from rdusim.core.stacks import load_stack
from rdusim.core.units import to_si

GPU_MODES = ("eager", "cuda-graph", "fused")
CONSTANTS_FILE = Path(__file__).parent / "data" / "gpu_constants.yaml"
ENGINE_STACK = "nemo-2023"  # the stack whose runtime work the calibration fits (engine_* constants)


@dataclass(frozen=True)
class GpuConstants:
    """The GPU model's calibration constants in SI units (see ``gpu_constants.yaml``)."""

    stream_efficiency: float
    engine_stream_efficiency: float
    gemm_efficiency: float
    kernel_ramp: float
    eager_host: float
    copy_to_datasheet: float
    gemm_to_datasheet: float
    graph_launch: float
    eager_launch: float
    reference_clock: float
    allreduce_latency: float
    engine_request: float
    engine_step: float
    engine_sequence_step: float
    fp8_gemm_efficiency_vs_bf16: float = 1.0  # FP8 matmuls' share of the FP8 peak / BF16's of the BF16 peak

    @classmethod
    def load(cls, path: str | Path | None = None) -> "GpuConstants":
        """Read a constants file (default: the packaged one)."""
        return _load_constants(str(path or CONSTANTS_FILE))

    def with_fitted(self, values: dict[str, float]) -> "GpuConstants":
        return replace(self, **values)


FRACTIONS = ("stream_efficiency", "engine_stream_efficiency", "gemm_efficiency", "copy_to_datasheet", "gemm_to_datasheet",
             "fp8_gemm_efficiency_vs_bf16")
# Constants a weight format may name as its GPU matmul efficiency relative to BF16 (precisions.yaml,
# ``gpu_gemm_efficiency``): the key in gpu_constants.yaml and the GpuConstants field.
FORMAT_GEMM_EFFICIENCIES = {"fp8_gemm_efficiency_vs_bf16_fraction": "fp8_gemm_efficiency_vs_bf16"}
# Constants a platform file may carry for its own GPU (``device.fitted``, written by calibrate-gpu).
PLATFORM_FITTED = ("stream_efficiency", "gemm_efficiency", "kernel_ramp", "eager_host")


def platform_constants(p: Platform, const: GpuConstants) -> GpuConstants:
    """``const`` with the constants that ``p`` fitted for its own GPU (``device.fitted``) put in."""
    own = {k: p.device[k] for k in PLATFORM_FITTED if k in p.device}
    for key in set(own) & set(FRACTIONS):
        if not 0 < own[key] <= 1:
            raise ConfigError(f"{p.name}.device.fitted.{key}_fraction", own[key], "a fraction in (0, 1]")
    if own.get("eager_host", 1.0) <= 0:
        raise ConfigError(f"{p.name}.device.fitted.eager_host_us", own["eager_host"] * 1e6, "a time > 0")
    return const.with_fitted(own) if own else const


def clear_constants_cache() -> None:
    """Forget the constants files read so far (after a fit rewrites one)."""
    _load_constants.cache_clear()


def format_gemm_rate(p: Platform, precision: str, bf16_rate: float, const: GpuConstants) -> float:
    """FLOP/s that matmuls in weight format ``precision`` reach on GPU ``p`` where BF16 matmuls of the same
    shapes and mode reach ``bf16_rate``: the BF16 rate scaled by the datasheet peak ratio of the format
    (``precisions.yaml`` ``gemm_rate``, e.g. ``peak_fp8`` / ``peak_bf16`` = 2 on an H100) and by the format's
    efficiency relative to BF16 (``gpu_gemm_efficiency``: a constant of ``gpu_constants.yaml``, e.g.
    ``fp8_gemm_efficiency_vs_bf16_fraction``, fitted to TensorRT-LLM v0.5's H100 FP8 times to first token;
    a format naming none keeps the BF16 efficiency). Shape effects common to both formats (tile and wave
    quantisation, the mode's kernels) stay in ``bf16_rate``; the factor holds what the low-precision path
    adds (activation quantisation, scaling epilogues, less tuned kernels)."""
    fmt = weight_precision(precision)
    ratio = gemm_peak(p, precision) / gemm_peak(p, "bf16")
    if not fmt.gpu_gemm_efficiency:
        return bf16_rate * ratio
    field = FORMAT_GEMM_EFFICIENCIES.get(fmt.gpu_gemm_efficiency)
    if field is None:
        raise ConfigError(f"precisions.weights.{precision}.gpu_gemm_efficiency", fmt.gpu_gemm_efficiency,
                          ", ".join(FORMAT_GEMM_EFFICIENCIES) + " (constants of baselines/data/gpu_constants.yaml)")
    return bf16_rate * ratio * getattr(const, field)


@lru_cache(maxsize=None)
def _load_constants(path: str) -> GpuConstants:
    raw = mapping(f"gpu constants {path}", load_yaml(path, f"gpu constants {path}"), "a mapping of constant blocks")
    si: dict[str, float] = {}
    for block in ("fitted", "derived", "assumed"):
        si.update(to_si(raw.get(block) or {}, f"gpu_constants.{block}"))
    # NeMo 2023's runtime work lives in its stack file; the calibration fits it as engine_* constants.
    nemo = load_stack(ENGINE_STACK)
    for key, value in (("engine_request", nemo.request), ("engine_step", nemo.step),
                       ("engine_sequence_step", nemo.sequence_step)):
        si.setdefault(key, value)
    names = [f.name for f in fields(GpuConstants)]
    missing = set(names) - set(si)
    if missing:
        raise ConfigError(f"{path}", sorted(missing), "every constant of baselines/data/gpu_constants.yaml")
    for key in FRACTIONS:
        if not 0 < si[key] <= 1:
            raise ConfigError(f"gpu_constants.{key}", si[key], "a fraction in (0, 1]")
    return GpuConstants(**{k: si[k] for k in names})


# ------------------------------------------------------------------ measured curves (calibrate-gpu)
CURVE_FIELDS = {"stream_copy": ("bytes", "time_us"), "stream_gemv": ("bytes", "time_us"),
                "gemm": ("m", "n", "k", "time_us")}


def read_curves(p: Platform) -> dict[str, dict[str, np.ndarray]]:
    """The measured sweeps of a platform file (``device.curves``), checked, in SI (seconds, bytes).

    Each curve maps its fields to equal-length lists of positive numbers with at least two points;
    ``time_us`` becomes ``time`` in seconds. Anything else raises :class:`ConfigError`.
    """
    out = {}
    for name, curve in (p.curves or {}).items():
        where = f"{p.name}.device.curves.{name}"
        if name not in CURVE_FIELDS:
            raise ConfigError(where, name, ", ".join(CURVE_FIELDS))
        want = CURVE_FIELDS[name]
        if not isinstance(curve, dict) or set(curve) != set(want):
            raise ConfigError(where, sorted(curve) if isinstance(curve, dict) else curve, "fields " + ", ".join(want))
        arrays = {}
        for key in want:
            values = curve[key]
            ok = isinstance(values, list) and len(values) >= 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0 for v in values)
            if not ok:
                raise ConfigError(f"{where}.{key}", values, "a list of at least two numbers > 0")
            arrays[key] = np.asarray(values, dtype=float)
        if len({len(a) for a in arrays.values()}) != 1:
            raise ConfigError(where, {k: len(a) for k, a in arrays.items()}, "lists of equal length")
        arrays["time"] = arrays.pop("time_us") * 1e-6
        out[name] = arrays
    return out


def fit_stream_curve(nbytes: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """``(t_fixed, rate)`` of ``t = t_fixed + bytes / rate`` fitted to a measured sweep (relative residuals,
    ``t_fixed >= 0``)."""
    b, t = np.asarray(nbytes, float), np.asarray(seconds, float)
    a = np.column_stack([1.0 / t, b / t])
    (t0, inv_rate), *_ = np.linalg.lstsq(a, np.ones_like(t), rcond=None)
    if t0 < 0 or inv_rate <= 0:
        t0, inv_rate = 0.0, float(np.sum(b / t) / np.sum((b / t) ** 2))
    return float(t0), float(1.0 / inv_rate)


def gemm_rate_from_curve(curve: dict[str, np.ndarray], fixed: float, copy: float, gemm: float) -> float | None:
    """Median FLOP rate of the compute-bound points of a GEMM sweep (time less the fixed part), or None."""
    m, n, k, t = curve["m"], curve["n"], curve["k"], curve["time"]
    flops = 2 * m * n * k
    nbytes = 2 * (m * k + k * n + m * n)
    bound = flops / gemm > nbytes / copy
    if not bound.any():
        return None
    return float(np.median(flops[bound] / np.maximum(t[bound] - fixed, 1e-9)))


@dataclass(frozen=True)
class GpuDevice:
    """One GPU's ceilings and effective kernel rates in SI units, measured where possible."""

    name: str
    hbm_bytes: float
    copy_bandwidth: float   # bytes/s a copy reaches (measured, else datasheet x the H100 ratio)
    gemm_rate: float        # FLOP/s of a large BF16 GEMM (measured, else datasheet x the H100 ratio)
    host_link: float
    host_link_pinned: float
    host_link_pageable: float
    nvlink_bandwidth: float
    eager_launch: float
    graph_launch: float
    gpus: int
    host_memory: float
    kernel_fixed: float = 0.0     # s every kernel pays (graph launch gap + ramp), or the measured curve's
    stream_rate: float = 0.0      # bytes/s of PyTorch's streaming kernels (eager, cuda-graph)
    engine_stream_rate: float = 0.0  # bytes/s of an optimised engine's kernels (fused)
    gemm_effective: float = 0.0   # FLOP/s model matmuls reach
    curve_source: str = ""        # which measured curves replaced carried constants
    allreduce_latency: float = 0.0  # s, latency part of one all-reduce (the H100's fitted value x SM clock ratio)
    eager_host: float = 0.0       # s of host time per operator in eager mode (the constants', or the GPU's own)
    own_constants: tuple[str, ...] = ()  # the constants this GPU's platform file fitted for itself
    collective_bandwidth: float = 0.0  # bytes/s an all-reduce moves per GPU (measured bus bandwidth, else NVLink's)
    engine_gemm: float = 0.0      # FLOP/s an engine's (fused) matmuls reach
    clock_scale: float = 1.0      # reference (H100) SM clock / this GPU's: carries per-kernel host-side times
    fp32_rate: float = 0.0        # FLOP/s of the CUDA cores in FP32 (datasheet; 0 where the file gives none)

    @classmethod
    def from_platform(cls, platform: Platform | str, const: GpuConstants | None = None) -> "GpuDevice":
        """Ceilings of a GPU platform: measured values and curves, else datasheet values carried from the H100;
        the platform's own fitted constants (``device.fitted``) in place of ``const``'s, and then of its curves."""
        p = load_platform(platform) if isinstance(platform, str) else platform
        if p.kind != "gpu":
            raise ConfigError("platform", p.name, "a GPU platform (kind: gpu)")
        c = platform_constants(p, const or GpuConstants.load())
        own = tuple(k for k in PLATFORM_FITTED if k in p.device)
        d = p.device
        curves = {} if own else read_curves(p)
        link = d.get("host_link", 0.0)  # optional: a measured-only platform file may lack it
        copy = d.get("hbm_copy", p.dev("hbm_bandwidth") * c.copy_to_datasheet)
        gemm = d.get("gemm_bf16", p.dev("peak_bf16") * c.gemm_to_datasheet)
        clock_scale = c.reference_clock / d["sm_clock"] if "sm_clock" in d else 1.0
        graph_launch = d.get("launch_graph", c.graph_launch * clock_scale)
        fixed = graph_launch + c.kernel_ramp
        stream, engine = copy * c.stream_efficiency, copy * c.engine_stream_efficiency
        gemm_eff = gemm * c.gemm_efficiency
        # an engine's matmuls: the rate model-shaped GEMMs reach in the kernel profiles of DGX GPUs (gemm_model,
        # Vidur), where the file gives it and the GPU did not fit its own efficiency; PyTorch's (eager, cuda-graph)
        # stay on the measured card's GEMM x the efficiency fitted to its own runs
        engine_gemm = d["gemm_model"] if "gemm_model" in d and "gemm_efficiency" not in own else gemm_eff
        used = []
        if "stream_gemv" in curves:
            fixed, rate = fit_stream_curve(curves["stream_gemv"]["bytes"], curves["stream_gemv"]["time"])
            stream = min(rate, copy)
            engine = min(copy, rate * c.engine_stream_efficiency / c.stream_efficiency)
            used.append("stream_gemv")
        if "gemm" in curves:
            measured = gemm_rate_from_curve(curves["gemm"], fixed, copy, gemm)
            if measured:
                gemm_eff = measured
                used.append("gemm")
        return cls(
            name=p.name, hbm_bytes=p.dev("hbm_capacity"), copy_bandwidth=copy, gemm_rate=gemm,
            host_link=link, host_link_pinned=d.get("h2d_pinned", link), host_link_pageable=d.get("h2d_pageable", link),
            nvlink_bandwidth=d.get("nvlink_bandwidth", 0.0),
            collective_bandwidth=d.get("allreduce_bus", d.get("nvlink_bandwidth", 0.0)), clock_scale=clock_scale,
            eager_launch=d.get("launch_eager", c.eager_launch),
            graph_launch=graph_launch, gpus=p.devices, host_memory=p.host_memory,
            kernel_fixed=fixed, stream_rate=stream, engine_stream_rate=engine, gemm_effective=gemm_eff,
            engine_gemm=engine_gemm if "gemm" not in used else gemm_eff,
            curve_source=", ".join(used), allreduce_latency=c.allreduce_latency * clock_scale,
            eager_host=c.eager_host, own_constants=own, fp32_rate=d.get("peak_fp32", 0.0),
        )

    def rates(self, mode: str) -> tuple[float, float, float]:
        """``(t_fixed s, GEMM FLOP/s, streaming bytes/s)`` of a kernel under ``mode``."""
        if mode == "fused":
            return self.kernel_fixed, self.engine_gemm or self.gemm_effective, self.engine_stream_rate
        return self.kernel_fixed, self.gemm_effective, self.stream_rate

    def decode_attention_rates(self, mode: str, fp32_efficiency: float | None = None,
                               kv_stream_efficiency: float | None = None) -> tuple[float, float]:
        """``(FLOP/s, bytes/s)`` of a kernel of attention over the KV cache (decode) under ``mode``.

        By default the kernel is costed as any other (the GEMM rate, the mode's streaming rate). A serving
        stack whose decode attention runs on the CUDA cores (TensorRT-LLM's masked multi-head attention,
        vLLM's PagedAttention, DeepSpeed's blocked attention: FP32 dot products per query head, no tensor
        cores) gives ``fp32_efficiency``, the share of the GPU's FP32 peak (``peak_fp32``) those kernels
        reach; with grouped-query attention each KV byte serves ``heads / kv_heads`` query heads, so the
        arithmetic grows with the group and such a kernel turns compute-bound. ``kv_stream_efficiency``
        is the rate at which it streams the KV cache, as a share of the copy rate (many independent
        contiguous blocks, unlike a weight GEMV). A GPU without ``peak_fp32`` keeps the GEMM rate.
        """
        _, gemm, bw = self.rates(mode)
        rate = self.fp32_rate * fp32_efficiency if fp32_efficiency and self.fp32_rate > 0 else gemm
        stream = self.copy_bandwidth * kv_stream_efficiency if kv_stream_efficiency else bw
        return rate, stream

    def stream_time(self, nbytes, mode: str = "cuda-graph"):
        """Time of a streaming kernel moving ``nbytes``: ``t_fixed + bytes / rate`` (the cost curve)."""
        fixed, _, bw = self.rates(mode)
        return fixed + np.asarray(nbytes, dtype=float) / bw


@dataclass
class GpuKernels:
    """A graph lowered to GPU kernels (per kernel arrays)."""

    mode: str
    mm_flops: np.ndarray
    bytes: np.ndarray
    coll_bytes: np.ndarray
    collectives: np.ndarray
    ops: np.ndarray
    kv_attention: np.ndarray | None = None  # 1.0 for a kernel holding attention over the KV cache (decode)

    @property
    def n_kernels(self) -> int:
        return len(self.ops)


def kernel_times(k: GpuKernels, dev: GpuDevice, const: GpuConstants) -> np.ndarray:
    """Execution time of each kernel on the GPU (no host time): ``t_fixed + max(compute, streaming)``."""
    fixed, gemm, bw = dev.rates(k.mode)
    t = fixed + np.maximum(k.mm_flops / gemm, k.bytes / bw)
    if dev.collective_bandwidth > 0:
        t = t + k.collectives * dev.allreduce_latency + k.coll_bytes / dev.collective_bandwidth
    return t


def total_time(k: GpuKernels, dev: GpuDevice, const: GpuConstants, batch: int = 1) -> float:
    """Time of one pass (a prompt pass or one decode step of ``batch`` sequences) under its mode:
    eager overlaps host time per op with kernel time; an engine (``fused``) adds its fixed runtime
    work per step (:func:`step_overhead`)."""
    t = kernel_times(k, dev, const)
    if k.mode == "eager":
        host = np.maximum(dev.eager_host or const.eager_host, dev.eager_launch) * k.ops
        return float(np.sum(np.maximum(host, t)))
    return float(np.sum(t)) + step_overhead(k.mode, const, batch)


def step_overhead(mode: str, const: GpuConstants, batch=1):
    """Fixed time a mode adds to every pass of ``batch`` sequences: an engine's per-step runtime work
    (``fused``: scheduling and host synchronisation per step, plus sampling and stop checks per
    sequence; NeMo's TensorRT-LLM stack), none otherwise. ``batch`` may be an array."""
    per_step = const.engine_step + const.engine_sequence_step * np.asarray(batch, dtype=float)
    if mode != "fused":
        per_step = np.zeros_like(per_step)
    return float(per_step) if np.ndim(per_step) == 0 else per_step


def request_overhead(mode: str, const: GpuConstants) -> float:
    """Fixed time a mode adds once per request, before its first token: an engine's request set-up,
    tokenising and response handling (``fused``), none otherwise."""
    return const.engine_request if mode == "fused" else 0.0


@dataclass(frozen=True)
class GpuResult:
    mode: str
    fits: bool
    reason: str
    time_s: float
    kernels: int
    bytes: float
    flops: float
