"""GPU baselines, part two: operator graphs lowered to GPU kernels (:func:`lower`) and one graph's
time on a GPU (:func:`evaluate`); the kernel cost, device and constants are in :mod:`baselines.gpu`.

Kept apart from :mod:`baselines.gpu` because lowering summarises a partition with numba
(:func:`rdusim.core.accounting.summarise_partition`): a prediction from cached kernel templates
(:mod:`rdusim.scenarios.predict_light`) imports :mod:`baselines.gpu` without numba.
"""
from __future__ import annotations

import numpy as np

from rdusim.core.accounting import graph_footprint, summarise_partition
from rdusim.core.errors import ConfigError
from rdusim.core.graph import Graph, Kind, Role
from rdusim.core.optable import OpTable, build_optable

from baselines.gpu import GPU_MODES, GpuConstants, GpuDevice, GpuKernels, GpuResult, total_time

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
                      collectives=np.add.reduceat(is_coll, bounds[:-1]), ops=np.diff(bounds),
                      kv_attention=np.minimum(np.add.reduceat(_kv_attention(graph), bounds[:-1]), 1.0))


def _kv_attention(graph: Graph) -> np.ndarray:
    """1.0 for each fused attention op that reads the KV cache (decode: one query token per sequence against
    the cached keys and values), else 0.0."""
    return np.array([float(op.kind == Kind.ATTENTION and any(t.role == Role.KV_CACHE for t in op.inputs))
                     for op in graph.ops])


def evaluate(graph: Graph, dev: GpuDevice, mode: str, const: GpuConstants | None = None) -> GpuResult:
    """Time of ``graph`` on one GPU of ``dev`` under ``mode``; out of memory is a result (fits=False)."""
    const = const or GpuConstants.load()
    weights, other = graph_footprint(graph)
    if weights + other > dev.hbm_bytes:
        return GpuResult(mode, False, f"needs {(weights + other) / 1e9:.1f} GB > {dev.hbm_bytes / 1e9:.0f} GB HBM per GPU",
                         float("nan"), 0, float("nan"), float("nan"))
    k = lower(graph, mode)
    return GpuResult(mode, True, "", total_time(k, dev, const), k.n_kernels, float(k.bytes.sum()), graph.flops)
