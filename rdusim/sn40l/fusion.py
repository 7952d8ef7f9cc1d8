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

import numpy as np

from rdusim.core.accounting import KernelArrays, summarise_partition
from rdusim.core.errors import ConfigError
from rdusim.core.jit import njit, register_jitable
from rdusim.core.optable import OpTable
from rdusim.sn40l.chip import RduChip

MODES = ("unfused", "fused")


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
register_jitable(partition_reference)  # callable from the numba version of partition_rows_reference


def partition_rows_reference(layer, is_stage, buffer_pmus, weight_pmus, pcus, pmus, respect_layers):
    """:func:`partition_reference` of many op tables sharing their structure (``buffer_pmus`` and
    ``weight_pmus`` are ``rows x ops``): ``(bounds, counts)``, row ``r``'s kernel boundaries being
    ``bounds[r, :counts[r] + 1]`` (the rest zero)."""
    rows, n = buffer_pmus.shape
    bounds = np.zeros((rows, n + 1), dtype=np.int64)
    counts = np.zeros(rows, dtype=np.int64)
    for r in range(rows):
        b = partition_reference(layer, is_stage, buffer_pmus[r], weight_pmus[r], pcus, pmus, respect_layers)
        bounds[r, :len(b)] = b
        counts[r] = len(b) - 1
    return bounds, counts


partition_rows_jit = njit(cache=True)(partition_rows_reference)


def _partition(tab: OpTable, chip: RduChip, mode: str, respect_layers: bool, use_jit: bool) -> np.ndarray:
    if mode == "unfused":
        return np.arange(tab.n_ops + 1, dtype=np.int64)
    if mode != "fused":
        raise ConfigError("fusion mode", mode, ", ".join(MODES))
    fn = partition_jit if use_jit else partition_reference
    return fn(tab.layer, tab.is_stage.astype(np.float64), tab.buffer_pmus, tab.weight_pmus,
              float(chip.pcus), float(chip.pmus), respect_layers)


def plan(tab: OpTable, chip: RduChip, mode: str, respect_layers: bool = True, use_jit: bool = True) -> KernelArrays:
    """Partition the ops of ``tab`` into kernels under ``mode`` (``unfused`` or ``fused``) and summarise them."""
    return plan_bounds(tab, chip, _partition(tab, chip, mode, respect_layers, use_jit), use_jit)


def plan_bounds(tab: OpTable, chip: RduChip, bounds: np.ndarray, use_jit: bool = True) -> KernelArrays:
    """Summarise a given partition (kernel boundaries ``[0, ..., n_ops]``) of the ops of ``tab`` on ``chip``."""
    return summarise_partition(tab, bounds, float(chip.pcus), float(chip.pmus), use_jit)
