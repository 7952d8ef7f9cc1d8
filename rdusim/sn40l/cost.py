"""Kernel cost on the SN40L: the time of each kernel of a plan, for one or many hardware settings.

A kernel is a pipeline whose throughput is set by its tightest resource (article, "Streaming
Dataflow"; roofline reasoning), plus the latency of its dependency chain (pipeline fill and the
latency-bound steps of its collectives) and its orchestration:

    stream  = max(HBM bytes / HBM bw, DDR bytes / DDR bw, on-chip bytes / (PMUs x PMU bw),
                  peer-link bytes / P2P bw)
    latency = collective steps x P2P latency + stages x stage fill
    SO: t = max(compute, stream) + latency + orchestration
    HO: t = max(compute + latency, stream) + orchestration

On-chip bandwidth counts every PMU of the chip: stage buffers are spread over as many PMUs as
their bandwidth needs (article, Fig. 3b: "Input and output bandwidths to and from stage buffers are
matched to their respective stages by using the appropriate number of memory units").

With hardware orchestration the AGCUs hold the whole static schedule (article, "Kernel Launch
Orchestration") and issue each kernel's off-chip reads (weights, KV cache) ahead of the data that
flows through the pipeline, the next kernel's as soon as the current kernel's are issued: off-chip
streaming then hides the chain's latency, which compute cannot (a stage waits for its input). With
software orchestration the host issues a kernel only after the previous one completed, so the
latency is exposed (``overlap`` = 0 in the hardware vector).

Orchestration per kernel = launch + operators x configuration time per operator: the stage programs
of a kernel's operators are loaded onto the tile at each launch, over the host link when the host
orchestrates (SO) and from device memory by the AGCUs when they do (HO).

``compute`` is the slowest stage at its allotted PCUs (from the planner), scaled by
``compute_scale`` for what-if clock changes. Weights are read from HBM except the fraction placed in
DDR.

The hot path is :func:`kernel_times_jit` / :func:`total_times_jit` over contiguous arrays; the
``*_reference`` functions are their plain-Python definitions, tested against them.
"""
from __future__ import annotations

import numpy as np

from rdusim.core.accounting import KernelArrays
from rdusim.core.jit import njit, register_jitable
from rdusim.sn40l.chip import RduChip

# Layout of a hardware vector (one row per configuration in many-configuration evaluation).
HW_FIELDS = ("compute_scale", "hbm_bandwidth", "ddr_bandwidth", "pmu_bandwidth", "p2p_bandwidth",
             "p2p_latency", "stage_fill_s", "launch_s", "weight_ddr_fraction", "pmus", "overlap",
             "config_s_per_op")
KERNEL_FIELDS = ("compute_s", "weight_bytes", "act_bytes", "onchip_bytes", "coll_bytes", "coll_steps",
                 "stages", "pmus", "ops")


def hw_vector(chip: RduChip, orchestration: str, weight_ddr_fraction: float = 0.0,
              compute_scale: float = 1.0) -> np.ndarray:
    """The hardware vector of ``chip`` for ``orchestration`` (``so`` or ``ho``)."""
    return np.array([compute_scale, chip.hbm_bandwidth, chip.ddr_bandwidth, chip.pmu_bandwidth,
                     chip.p2p_bandwidth, chip.p2p_latency, chip.stage_fill_s, chip.launch_s(orchestration),
                     weight_ddr_fraction, float(chip.pmus), 1.0 if orchestration == "ho" else 0.0,
                     chip.config_s_per_op(orchestration)], dtype=np.float64)


def orchestration_times(km: np.ndarray, hw: np.ndarray) -> np.ndarray:
    """Per-kernel orchestration time (s): launch plus loading each operator's configuration."""
    return hw[7] + km[8] * hw[11]


def kernel_matrix(k: KernelArrays) -> np.ndarray:
    """Kernel summaries as one C-contiguous (fields x kernels) float64 matrix."""
    return np.ascontiguousarray(np.vstack([np.asarray(getattr(k, f), dtype=np.float64) for f in KERNEL_FIELDS]))


def kernel_times_reference(km: np.ndarray, hw: np.ndarray) -> np.ndarray:
    """Per-kernel time (s) for one hardware vector. ``km`` is :func:`kernel_matrix`."""
    n = km.shape[1]
    out = np.empty(n)
    for j in range(n):
        compute = km[0, j] * hw[0]
        ddr_w = km[1, j] * hw[8]
        hbm = (km[1, j] - ddr_w + km[2, j]) / hw[1]
        ddr = ddr_w / hw[2]
        onchip = km[3, j] / (hw[9] * hw[3])
        link = km[4, j] / hw[4]
        latency = km[5, j] * hw[5] + km[6, j] * hw[6]
        stream = hbm
        if ddr > stream:
            stream = ddr
        if onchip > stream:
            stream = onchip
        if link > stream:
            stream = link
        if hw[10] > 0.0:  # hardware orchestration: streaming hides the chain's latency
            t = compute + latency
            if stream > t:
                t = stream
        else:
            t = compute
            if stream > t:
                t = stream
            t += latency
        out[j] = t + hw[7] + km[8, j] * hw[11]
    return out


kernel_times_jit = njit(cache=True, fastmath=False)(kernel_times_reference)
register_jitable(kernel_times_reference)  # callable from the numba versions below


def weighted_totals_reference(summary: np.ndarray, fields: np.ndarray, counts: np.ndarray, bounds: np.ndarray,
                              op_repeat: np.ndarray, hws: np.ndarray) -> np.ndarray:
    """Total time (s) of many plans of one op table, one hardware vector each. Row ``r`` has kernels
    ``summary[r, fields, :counts[r]]`` (``(rows, summary rows, kernels)``, padded; ``fields`` picks the
    :data:`KERNEL_FIELDS`), starting at ops ``bounds[r, :counts[r]]``; a kernel counts ``op_repeat`` of
    its first op times (the kernels of a decoder layer planned once, see :mod:`rdusim.sn40l.template`)."""
    out = np.empty(summary.shape[0])
    for r in range(summary.shape[0]):
        k = counts[r]
        t = kernel_times_reference(summary[r][fields, :k], hws[r])
        total = 0.0
        for j in range(k):
            total += op_repeat[bounds[r, j]] * t[j]
        out[r] = total
    return out


weighted_totals_jit = njit(cache=True)(weighted_totals_reference)


def total_times_reference(km: np.ndarray, hws: np.ndarray) -> np.ndarray:
    """Total time (s) of the kernels for each hardware vector (row of ``hws``)."""
    out = np.empty(hws.shape[0])
    for c in range(hws.shape[0]):
        out[c] = kernel_times_reference(km, hws[c]).sum()
    return out


@njit(cache=True)
def total_times_jit(km: np.ndarray, hws: np.ndarray) -> np.ndarray:
    out = np.empty(hws.shape[0])
    for c in range(hws.shape[0]):
        out[c] = kernel_times_jit(km, hws[c]).sum()
    return out
