"""Kernel cost on the SN40L: the time of each kernel of a plan, for one or many hardware settings.

A kernel is a pipeline whose throughput is set by its tightest resource (article, "Streaming
Dataflow"; roofline reasoning):

    t = max(compute, HBM bytes / HBM bw, DDR bytes / DDR bw, on-chip bytes / (PMUs x PMU bw),
            peer-link bytes / P2P bw)

On-chip bandwidth counts every PMU of the chip: stage buffers are spread over as many PMUs as
their bandwidth needs (article, Fig. 3b: "Input and output bandwidths to and from stage buffers are
matched to their respective stages by using the appropriate number of memory units").
        + collective steps x P2P latency + stages x stage fill + launch

``compute`` is the slowest stage at its allotted PCUs (from the planner), scaled by
``compute_scale`` for what-if clock changes. Weights are read from HBM except the fraction placed in
DDR. ``launch`` is the per-kernel orchestration cost: software (host) or hardware (AGCU).

The hot path is :func:`kernel_times_jit` / :func:`total_times_jit` over contiguous arrays; the
``*_reference`` functions are their plain-Python definitions, tested against them.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from rdusim.core.accounting import KernelArrays
from rdusim.sn40l.chip import RduChip

# Layout of a hardware vector (one row per configuration in many-configuration evaluation).
HW_FIELDS = ("compute_scale", "hbm_bandwidth", "ddr_bandwidth", "pmu_bandwidth", "p2p_bandwidth",
             "p2p_latency", "stage_fill_s", "launch_s", "weight_ddr_fraction", "pmus")
KERNEL_FIELDS = ("compute_s", "weight_bytes", "act_bytes", "onchip_bytes", "coll_bytes", "coll_steps",
                 "stages", "pmus")


def hw_vector(chip: RduChip, orchestration: str, weight_ddr_fraction: float = 0.0,
              compute_scale: float = 1.0) -> np.ndarray:
    """The hardware vector of ``chip`` for ``orchestration`` (``so`` or ``ho``)."""
    return np.array([compute_scale, chip.hbm_bandwidth, chip.ddr_bandwidth, chip.pmu_bandwidth,
                     chip.p2p_bandwidth, chip.p2p_latency, chip.stage_fill_s, chip.launch_s(orchestration),
                     weight_ddr_fraction, float(chip.pmus)], dtype=np.float64)


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
        t = compute
        if hbm > t:
            t = hbm
        if ddr > t:
            t = ddr
        if onchip > t:
            t = onchip
        if link > t:
            t = link
        out[j] = t + km[5, j] * hw[5] + km[6, j] * hw[6] + hw[7]
    return out


kernel_times_jit = njit(cache=True, fastmath=False)(kernel_times_reference)


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
