"""Fusion planner: partition an operator graph into kernels, unfused or fused as streaming dataflow.

Article, "Streaming Dataflow" and "Impact of Operator Fusion":

* ``unfused``: every operator is its own kernel; each reads its inputs from and writes its output
  to off-chip memory (HBM).
* ``fused``: a run of consecutive operators becomes one kernel executed as a coarse-grained
  pipeline. Intermediates stay in PMU stage buffers; a transpose becomes a buffer access pattern.
  A kernel must fit the chip: one PCU at least per compute stage (at most ``pcus`` stages) and PMUs
  for its stage buffers and weights (at most ``pmus``). A kernel never spans two decoder layers:
  each layer is one compiled section, reused layer after layer.

The partition is greedy in execution order (grow the kernel while it fits), which is optimal for a
chain under additive resource limits. The plan is summarised per kernel in :class:`KernelArrays`:
off-chip bytes, compute time of the pipeline's slowest stage with PCUs allotted in proportion to
work, PCUs and PMUs used, on-chip traffic, collective traffic and stage count. Each numba kernel
here has a plain-Python reference (``*_reference``) that the tests compare against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import ConfigError
from .optable import OpTable
from .rdu import RduChip

MODES = ("unfused", "fused")


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
    pmus: np.ndarray          # PMUs used
    flops: np.ndarray

    @property
    def n_kernels(self) -> int:
        return len(self.start)

    def ops_per_kernel(self) -> np.ndarray:
        return self.stop - self.start


# --------------------------------------------------------------------------- partition search
def partition_reference(layer, is_stage, buffer_pmus, weight_pmus, pcus, pmus, respect_layers):
    """Pure-Python greedy partition; returns kernel boundaries ``[0, b1, ..., n]``."""
    n = len(layer)
    bounds = [0]
    used_pcu = used_pmu = 0.0
    for i in range(n):
        need_pmu = buffer_pmus[i] + weight_pmus[i]
        start = bounds[-1]
        new_section = respect_layers and i > start and layer[i] != layer[i - 1]
        if i > start and (new_section or used_pcu + is_stage[i] > pcus or used_pmu + need_pmu > pmus):
            bounds.append(i)
            used_pcu = used_pmu = 0.0
        used_pcu += is_stage[i]
        used_pmu += need_pmu
    bounds.append(n)
    return np.asarray(bounds, dtype=np.int64)


partition_jit = njit(cache=True)(partition_reference)


def _partition(tab: OpTable, chip: RduChip, mode: str, respect_layers: bool, use_jit: bool) -> np.ndarray:
    if mode == "unfused":
        return np.arange(tab.n_ops + 1, dtype=np.int64)
    if mode != "fused":
        raise ConfigError("fusion mode", mode, ", ".join(MODES))
    fn = partition_jit if use_jit else partition_reference
    return fn(tab.layer, tab.is_stage.astype(np.float64), tab.buffer_pmus, tab.weight_pmus,
              float(chip.pcus), float(chip.pmus), respect_layers)


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


def _op_tensor_ids(tab: OpTable) -> np.ndarray:
    ids = np.full(tab.n_ops, -1, dtype=np.int64)
    produced = np.nonzero(tab.t_producer >= 0)[0]
    ids[tab.t_producer[produced]] = produced
    return ids


def plan(tab: OpTable, chip: RduChip, mode: str, respect_layers: bool = True, use_jit: bool = True) -> KernelArrays:
    """Partition the ops of ``tab`` into kernels under ``mode`` (``unfused`` or ``fused``) and summarise them."""
    return plan_bounds(tab, chip, _partition(tab, chip, mode, respect_layers, use_jit), use_jit)


def plan_bounds(tab: OpTable, chip: RduChip, bounds: np.ndarray, use_jit: bool = True) -> KernelArrays:
    """Summarise a given partition (kernel boundaries ``[0, ..., n_ops]``) of the ops of ``tab``."""
    bounds = np.asarray(bounds, dtype=np.int64)
    if bounds[0] != 0 or bounds[-1] != tab.n_ops or np.any(np.diff(bounds) <= 0):
        raise ValueError(f"kernel boundaries must rise from 0 to {tab.n_ops}")
    fn = summarise_jit if use_jit else summarise_reference
    s = fn(bounds, tab.work_s, tab.is_stage.astype(np.float64), tab.weight_bytes, tab.buffer_pmus,
           tab.weight_pmus, tab.onchip_bytes, tab.coll_bytes, tab.coll_steps, tab.flops, tab.in_ptr,
           tab.in_tensor, tab.t_bytes, tab.t_producer, tab.t_last_consumer, tab.t_is_output,
           _op_tensor_ids(tab), float(chip.pcus), float(chip.pmus))
    return KernelArrays(start=bounds[:-1].copy(), stop=bounds[1:].copy(), compute_s=s[0], weight_bytes=s[1],
                        act_bytes=s[2], onchip_bytes=s[3], coll_bytes=s[4], coll_steps=s[5], stages=s[6],
                        pcus=s[7], pmus=s[8], flops=s[9])
