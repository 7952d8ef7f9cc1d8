"""GPU baselines: the same operator graphs lowered to GPU kernels and costed on a roofline.

Execution modes (issue "GPU baselines"):

* ``eager``: one kernel per operator, each issued from the host (PyTorch eager). The host and the
  GPU overlap, so an operator costs the longer of its host time and its kernel time.
* ``cuda-graph``: the same kernels replayed from a CUDA graph: no host time per kernel.
* ``fused``: an optimised engine's kernel set (TensorRT-LLM, NeMo, LMDeploy): each matmul with its
  element-wise prologue and epilogue, attention as one fused kernel (no score tensor in HBM, no
  repeated KV heads), replayed from a graph.

Per kernel: ``t = max(floor, matmul FLOPs / (GEMM rate x gemm_eff), bytes / (copy bw x bw_eff))``
plus, for an all-reduce over ``w`` GPUs, ``latency + 2 (w-1)/w bytes / NVLink bw``. GEMM rate and copy
bandwidth are measured where a measurement exists (``measured:`` in the platform file), else the
datasheet value times the measured/datasheet ratio of the H100. Constants: ``baselines/data/gpu_constants.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from rdusim.core.accounting import graph_footprint, summarise_partition
from rdusim.core.errors import ConfigError
from rdusim.core.graph import Graph, Kind
from rdusim.core.optable import OpTable, build_optable
from rdusim.core.platforms import Platform, load_platform
from rdusim.core.units import to_si

GPU_MODES = ("eager", "cuda-graph", "fused")
CONSTANTS_FILE = Path(__file__).parent / "data" / "gpu_constants.yaml"


@dataclass(frozen=True)
class GpuConstants:
    """The GPU model's calibration constants in SI units (see ``gpu_constants.yaml``)."""

    bw_efficiency: float
    gemm_efficiency: float
    kernel_floor: float
    eager_host: float
    copy_to_datasheet: float
    gemm_to_datasheet: float
    graph_launch: float
    eager_launch: float
    allreduce_latency: float

    @classmethod
    def load(cls, path: str | Path | None = None) -> "GpuConstants":
        """Read a constants file (default: the packaged one)."""
        return _load_constants(str(path or CONSTANTS_FILE))

    def with_fitted(self, values: dict[str, float]) -> "GpuConstants":
        return replace(self, **values)


@lru_cache(maxsize=None)
def _load_constants(path: str) -> GpuConstants:
    with open(path) as fh:
        raw = yaml.safe_load(fh)
    si: dict[str, float] = {}
    for block in ("fitted", "derived", "assumed"):
        si.update(to_si(raw.get(block) or {}, f"gpu_constants.{block}"))
    names = [f.name for f in fields(GpuConstants)]
    missing = set(names) - set(si)
    if missing:
        raise ConfigError(f"{path}", sorted(missing), "every constant of baselines/data/gpu_constants.yaml")
    for key in ("bw_efficiency", "gemm_efficiency", "copy_to_datasheet", "gemm_to_datasheet"):
        if not 0 < si[key] <= 1:
            raise ConfigError(f"gpu_constants.{key}", si[key], "a fraction in (0, 1]")
    return GpuConstants(**{k: si[k] for k in names})


@dataclass(frozen=True)
class GpuDevice:
    """One GPU's ceilings in SI units, measured where possible."""

    name: str
    hbm_bytes: float
    copy_bandwidth: float   # bytes/s a streaming kernel can reach at best (measured copy)
    gemm_rate: float        # FLOP/s of a large BF16 GEMM (measured)
    host_link: float
    host_link_pinned: float
    host_link_pageable: float
    nvlink_bandwidth: float
    eager_launch: float
    graph_launch: float
    gpus: int
    host_memory: float

    @classmethod
    def from_platform(cls, platform: Platform | str, const: GpuConstants | None = None) -> "GpuDevice":
        """Ceilings of a GPU platform: measured values, else datasheet x the H100's measured ratio."""
        p = load_platform(platform) if isinstance(platform, str) else platform
        if p.kind != "gpu":
            raise ConfigError("platform", p.name, "a GPU platform (kind: gpu)")
        c = const or GpuConstants.load()
        d = p.device
        link = d.get("host_link", 0.0)  # optional: a measured-only platform file may lack it
        return cls(
            name=p.name, hbm_bytes=p.dev("hbm_capacity"),
            copy_bandwidth=d.get("hbm_copy", p.dev("hbm_bandwidth") * c.copy_to_datasheet),
            gemm_rate=d.get("gemm_bf16", p.dev("peak_bf16") * c.gemm_to_datasheet),
            host_link=link, host_link_pinned=d.get("h2d_pinned", link), host_link_pageable=d.get("h2d_pageable", link),
            nvlink_bandwidth=d.get("nvlink_bandwidth", 0.0), eager_launch=d.get("launch_eager", c.eager_launch),
            graph_launch=d.get("launch_graph", c.graph_launch), gpus=p.devices, host_memory=p.host_memory,
        )


@dataclass
class GpuKernels:
    """A graph lowered to GPU kernels (per kernel arrays)."""

    mode: str
    mm_flops: np.ndarray
    bytes: np.ndarray
    coll_bytes: np.ndarray
    collectives: np.ndarray
    ops: np.ndarray

    @property
    def n_kernels(self) -> int:
        return len(self.ops)


ANCHOR_KINDS = (Kind.MATMUL, Kind.COLLECTIVE, Kind.GATHER)
_CODES = {k: i for i, k in enumerate(Kind)}


def fused_boundaries(tab: OpTable, graph: Graph) -> np.ndarray:
    """Kernel boundaries of an optimised engine: a kernel starts at each matmul with weights, at the
    attention score matmul (the whole attention up to attention x V is one fused kernel), at each
    collective and lookup; element-wise work joins the kernel before it, and pure data movement
    (transposes, repeated KV heads, cache writes) joins the kernel after it, as a prologue."""
    n = tab.n_ops
    anchors = []
    in_attention = False
    for i, op in enumerate(graph.ops):
        is_anchor = False
        if op.kind == Kind.MATMUL:
            if op.weight_inputs:
                is_anchor, in_attention = True, False
            elif not in_attention:
                is_anchor, in_attention = True, True
        elif op.kind == Kind.ATTENTION:
            is_anchor, in_attention = True, False
        elif op.kind in (Kind.COLLECTIVE, Kind.GATHER):
            is_anchor, in_attention = True, False
        if is_anchor:
            start = i
            while start > 0 and _moves_only(graph.ops[start - 1]) and (start - 1) not in anchors:
                start -= 1
            if not anchors or start > anchors[-1]:
                anchors.append(start)
    bounds = sorted(set([0] + anchors + [n]))
    return np.asarray(bounds, dtype=np.int64)


def _moves_only(op) -> bool:
    return op.kind == Kind.TRANSPOSE or (op.kind == Kind.ELEMENTWISE and op.flops == 0)


def lower(graph: Graph, mode: str) -> GpuKernels:
    """Lower ``graph`` to the kernels of ``mode`` (eager, cuda-graph: one per op; fused: engine kernels)."""
    if mode not in GPU_MODES:
        raise ConfigError("execution mode", mode, ", ".join(GPU_MODES))
    tab = build_optable(graph)
    if mode == "fused":
        bounds = fused_boundaries(tab, graph)
    else:
        bounds = np.arange(tab.n_ops + 1, dtype=np.int64)
    k = summarise_partition(tab, bounds)
    is_mm = (tab.kind == _CODES[Kind.MATMUL]) | (tab.kind == _CODES[Kind.ATTENTION])
    mm = np.add.reduceat(np.where(is_mm, tab.flops, 0.0), bounds[:-1])
    is_coll = (tab.kind == _CODES[Kind.COLLECTIVE]).astype(float)
    return GpuKernels(mode=mode, mm_flops=mm, bytes=k.weight_bytes + k.act_bytes, coll_bytes=k.coll_bytes,
                      collectives=np.add.reduceat(is_coll, bounds[:-1]), ops=np.diff(bounds))


def kernel_times(k: GpuKernels, dev: GpuDevice, const: GpuConstants) -> np.ndarray:
    """Execution time of each kernel on the GPU (no host time)."""
    compute = k.mm_flops / (dev.gemm_rate * const.gemm_efficiency)
    memory = k.bytes / (dev.copy_bandwidth * const.bw_efficiency)
    t = np.maximum(const.kernel_floor, np.maximum(compute, memory))
    if dev.nvlink_bandwidth > 0:
        t = t + k.collectives * const.allreduce_latency + k.coll_bytes / dev.nvlink_bandwidth
    return t


def total_time(k: GpuKernels, dev: GpuDevice, const: GpuConstants) -> float:
    """Time of all kernels under their mode: eager overlaps host time per op with kernel time."""
    t = kernel_times(k, dev, const)
    if k.mode == "eager":
        host = np.maximum(const.eager_host, dev.eager_launch) * k.ops
        return float(np.sum(np.maximum(host, t)))
    return float(np.sum(t))


@dataclass(frozen=True)
class GpuResult:
    mode: str
    fits: bool
    reason: str
    time_s: float
    kernels: int
    bytes: float
    flops: float


def evaluate(graph: Graph, dev: GpuDevice, mode: str, const: GpuConstants | None = None) -> GpuResult:
    """Time of ``graph`` on one GPU of ``dev`` under ``mode``; out of memory is a result (fits=False)."""
    const = const or GpuConstants.load()
    weights, other = graph_footprint(graph)
    if weights + other > dev.hbm_bytes:
        return GpuResult(mode, False, f"needs {(weights + other) / 1e9:.1f} GB > {dev.hbm_bytes / 1e9:.0f} GB HBM per GPU",
                         float("nan"), 0, float("nan"), float("nan"))
    k = lower(graph, mode)
    return GpuResult(mode, True, "", total_time(k, dev, const), k.n_kernels, float(k.bytes.sum()), graph.flops)
