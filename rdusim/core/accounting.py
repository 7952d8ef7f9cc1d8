"""Byte and FLOP accounting shared by every platform model.

Two things both the SN40L and the GPU model need from an operator graph:

* :func:`graph_footprint`: the bytes one device must hold (weights; KV cache, optimizer state and
  live activations);
* :func:`summarise_partition`: given a partition of the ops into kernels (boundaries chosen by the
  platform model: the SN40L fusion planner, or a GPU engine's kernel set), the per-kernel totals of
  weight bytes, activation bytes that enter or leave the kernel through off-chip memory, on-chip
  traffic, collective bytes and steps, FLOPs, and the pipeline's slowest stage with compute units
  allotted in proportion to work (:class:`KernelArrays`).

The numba kernel has a plain-Python reference (``summarise_reference``) that the tests compare against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rdusim.core.graph import Graph, Role
from rdusim.core.jit import njit, register_jitable
from rdusim.core.optable import OpTable


def graph_footprint(graph: Graph) -> tuple[float, float]:
    """(weight bytes, other resident bytes) one device holds for ``graph``.

    Weights are every distinct weight tensor in full (not just the rows a lookup reads); the other
    bytes are the KV cache, optimizer state, and the largest activation alive at once (twice the
    largest tensor, a producer's input and output).
    """
    weights: dict[str, int] = {}
    other: dict[str, int] = {}
    largest = 0
    for op in graph.ops:
        for t in op.inputs:
            if t.role == Role.WEIGHT:
                weights[t.name] = t.nbytes
            elif t.role in (Role.KV_CACHE, Role.STATE):
                other[t.name] = t.nbytes
        largest = max(largest, op.output.nbytes)
    return float(sum(weights.values())), float(sum(other.values()) + 2 * largest)


def repeated_footprint(graph: Graph, repeats: dict[int, int]) -> tuple[float, float]:
    """:func:`graph_footprint` of the graph in which the ops of layer ``l`` stand for ``repeats[l]``
    identical layers (a model built with one decoder layer, see :func:`benchmarks.decoder.layer_graph`).

    A weight, KV-cache or state tensor counts once per repetition of the layer of the first op that
    reads it; the largest activation is the same in every repetition. Equals :func:`graph_footprint`
    of the full graph (tests/test_tiled.py).
    """
    weights: dict[str, int] = {}
    other: dict[str, int] = {}
    largest = 0
    for op in graph.ops:
        times = repeats.get(op.layer, 1)
        for t in op.inputs:
            if t.role == Role.WEIGHT:
                weights.setdefault(t.name, t.nbytes * times)
            elif t.role in (Role.KV_CACHE, Role.STATE):
                other.setdefault(t.name, t.nbytes * times)
        largest = max(largest, op.output.nbytes)
    return float(sum(weights.values())), float(sum(other.values()) + 2 * largest)


@dataclass
class KernelArrays:
    """Per-kernel summary of a plan (struct of arrays, length = number of kernels)."""

    start: np.ndarray         # first op index
    stop: np.ndarray          # one past the last op index
    compute_s: np.ndarray     # slowest pipeline stage at the PCUs allotted
    weight_bytes: np.ndarray  # weights read (tier decided by placement)
    act_bytes: np.ndarray     # activations, inputs, KV cache read and outputs written (HBM)
    onchip_bytes: np.ndarray  # traffic through PMUs
    coll_bytes: np.ndarray    # bytes sent over peer links
    coll_steps: np.ndarray    # latency-bound collective steps
    stages: np.ndarray        # pipeline depth (fill and drain)
    pcus: np.ndarray          # PCUs used
    pmus: np.ndarray          # PMUs used: for capacity, and at least one per PCU (bandwidth)
    flops: np.ndarray

    @property
    def n_kernels(self) -> int:
        return len(self.start)

    def ops_per_kernel(self) -> np.ndarray:
        return self.stop - self.start

    @property
    def ops(self) -> np.ndarray:
        """Operators per kernel, as floats (a cost-vector field)."""
        return (self.stop - self.start).astype(np.float64)


# --------------------------------------------------------------------------- kernel summaries
def summarise_reference(bounds, work_s, is_stage, weight_bytes, buffer_pmus, weight_pmus, onchip,
                        coll_bytes, coll_steps, flops, in_ptr, in_tensor, t_bytes, t_producer,
                        t_last, t_is_output, op_tensor, pcus, pmus):
    """Pure-Python per-kernel summary of a partition (see :class:`KernelArrays`)."""
    k = len(bounds) - 1
    out = np.zeros((11, k))
    last_read_by = np.full(len(t_bytes), -1, dtype=np.int64)
    for j in range(k):
        a, b = bounds[j], bounds[j + 1]
        fused = b - a > 1
        total_work = 0.0
        stages = 0.0
        for i in range(a, b):
            total_work += work_s[i]
            stages += is_stage[i]
        # PCUs: one per stage, the rest in proportion to each stage's work
        spare = pcus - stages
        slowest = 0.0
        used_pcus = 0.0
        for i in range(a, b):
            if is_stage[i] == 0:
                continue
            if fused:
                share = np.floor(spare * work_s[i] / total_work) if total_work > 0 else 0.0
                p = 1.0 + share
            else:
                p = pcus
            used_pcus += p
            t = work_s[i] / p
            if t > slowest:
                slowest = t
        act = 0.0
        wbytes = 0.0
        used_pmus = 0.0
        on = 0.0
        cb = 0.0
        cs = 0.0
        fl = 0.0
        for i in range(a, b):
            wbytes += weight_bytes[i]
            on += onchip[i]
            cb += coll_bytes[i]
            cs += coll_steps[i]
            fl += flops[i]
            used_pmus += buffer_pmus[i] + weight_pmus[i]
            for q in range(in_ptr[i], in_ptr[i + 1]):
                t = in_tensor[q]
                if t_producer[t] < a and last_read_by[t] != j:  # enters the kernel from memory
                    act += t_bytes[t]
                    last_read_by[t] = j
            t = op_tensor[i]
            if t_last[t] >= b or t_is_output[t] == 1 or t_last[t] == i:  # leaves the kernel
                act += t_bytes[t]
        if not fused:
            used_pmus = pmus
        elif used_pcus > used_pmus:
            # a PCU streams its operands from a PMU (one PMU's bandwidth feeds one PCU): the compiler
            # spreads stage buffers over at least as many PMUs as the kernel has PCUs (those holding
            # weights or reordering blocks included)
            used_pmus = used_pcus
        out[0, j] = slowest
        out[1, j] = wbytes
        out[2, j] = act
        out[3, j] = on
        out[4, j] = cb
        out[5, j] = cs
        out[6, j] = stages
        out[7, j] = used_pcus
        out[8, j] = min(used_pmus, pmus)
        out[9, j] = fl
        out[10, j] = b - a
    return out


summarise_jit = njit(cache=True)(summarise_reference)
register_jitable(summarise_reference)  # callable from the numba version of summarise_rows_reference


def summarise_rows_reference(bounds, counts, work_s, is_stage, weight_bytes, buffer_pmus, weight_pmus, onchip,
                             coll_bytes, coll_steps, flops, in_ptr, in_tensor, t_bytes, t_producer, t_last,
                             t_is_output, op_tensor, pcus, pmus):
    """:func:`summarise_reference` of many op tables sharing their structure: per-op and per-tensor
    arrays that vary are ``rows x ops`` (``rows x tensors``), row ``r``'s partition is
    ``bounds[r, :counts[r] + 1]``. Returns ``(rows, 11, ops)``, row ``r``'s kernels in ``[:, :counts[r]]``."""
    rows, n = work_s.shape
    out = np.zeros((rows, 11, n))
    for r in range(rows):
        k = counts[r]
        out[r, :, :k] = summarise_reference(bounds[r, :k + 1], work_s[r], is_stage, weight_bytes[r], buffer_pmus[r],
                                            weight_pmus[r], onchip[r], coll_bytes[r], coll_steps, flops[r],
                                            in_ptr, in_tensor, t_bytes[r], t_producer, t_last, t_is_output,
                                            op_tensor, pcus, pmus)
    return out


summarise_rows_jit = njit(cache=True)(summarise_rows_reference)


def _op_tensor_ids(tab: OpTable) -> np.ndarray:
    ids = np.full(tab.n_ops, -1, dtype=np.int64)
    produced = np.nonzero(tab.t_producer >= 0)[0]
    ids[tab.t_producer[produced]] = produced
    return ids


def summarise_partition(tab: OpTable, bounds: np.ndarray, pcus: float = 1.0, pmus: float = 1.0,
                        use_jit: bool = True) -> KernelArrays:
    """Summarise a given partition (kernel boundaries ``[0, ..., n_ops]``) of the ops of ``tab``.

    ``pcus`` and ``pmus`` are the compute and memory units one kernel may use (an SN40L socket's
    counts); they only affect ``compute_s``, ``pcus`` and ``pmus`` of the result. Byte and FLOP
    totals do not depend on them, so a platform that only needs those (the GPU model) keeps 1 and 1.
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    if bounds[0] != 0 or bounds[-1] != tab.n_ops or np.any(np.diff(bounds) <= 0):
        raise ValueError(f"kernel boundaries must rise from 0 to {tab.n_ops}")
    fn = summarise_jit if use_jit else summarise_reference
    s = fn(bounds, tab.work_s, tab.is_stage.astype(np.float64), tab.weight_bytes, tab.buffer_pmus,
           tab.weight_pmus, tab.onchip_bytes, tab.coll_bytes, tab.coll_steps, tab.flops, tab.in_ptr,
           tab.in_tensor, tab.t_bytes, tab.t_producer, tab.t_last_consumer, tab.t_is_output,
           _op_tensor_ids(tab), float(pcus), float(pmus))
    return KernelArrays(start=bounds[:-1].copy(), stop=bounds[1:].copy(), compute_s=s[0], weight_bytes=s[1],
                        act_bytes=s[2], onchip_bytes=s[3], coll_bytes=s[4], coll_steps=s[5], stages=s[6],
                        pcus=s[7], pmus=s[8], flops=s[9])
