"""Run a workload graph on the SN40L: plan kernels, place data, cost every kernel, sum up.

This is the entry point of the RDU model: ``evaluate(graph, chip, mode, orchestration)`` returns the
time and the counters the article reports (kernel launches, bytes per tier, operational intensity,
PCU/PMU occupancy, achieved fraction of HBM bandwidth). Modes follow the article's Figure 6:
``unfused`` (one kernel per operator, software-orchestrated), ``fused-so`` and ``fused-ho``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rdusim.core.accounting import KernelArrays
from rdusim.core.errors import ConfigError
from rdusim.core.graph import Graph
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.cost import hw_vector, kernel_matrix, kernel_times_jit, orchestration_times
from rdusim.sn40l.fusion import plan
from rdusim.sn40l.memory import Placement, place
from rdusim.sn40l.opcost import rdu_optable

EXECUTION_MODES = {"unfused": ("unfused", "so"), "fused-so": ("fused", "so"), "fused-ho": ("fused", "ho")}


@dataclass(frozen=True)
class RduResult:
    """What one run on one socket costs (a tensor-parallel run: each socket runs its shard)."""

    mode: str
    fits: bool
    reason: str
    time_s: float
    kernels: int
    flops: float
    hbm_bytes: float
    ddr_bytes: float
    onchip_bytes: float
    launch_s: float             # orchestration: launches and configuration loads
    pcu_occupancy: float        # fraction of PCUs in use, weighted by kernel run time over the whole run
    pmu_occupancy: float
    hbm_bw_fraction: float      # HBM bytes / time / peak HBM bandwidth
    max_ops_per_kernel: int

    @property
    def operational_intensity(self) -> float:
        moved = self.hbm_bytes + self.ddr_bytes
        return self.flops / moved if moved else float("inf")

    def as_dict(self) -> dict:
        return asdict(self)


def oom(mode: str, reason: str) -> RduResult:
    nan = float("nan")
    return RduResult(mode, False, reason, nan, 0, nan, nan, nan, nan, nan, nan, nan, nan, 0)


def pmus_in_use(kernels: KernelArrays, times: np.ndarray, chip: RduChip) -> np.ndarray:
    """PMUs each kernel occupies: those its buffers and weights need for capacity, plus those needed
    to carry its on-chip traffic at the kernel's pace (bandwidth matching), at most all of them."""
    for_bandwidth = kernels.onchip_bytes / (times * chip.pmu_bandwidth)
    return np.minimum(chip.pmus, kernels.pmus + for_bandwidth)


def summarise(kernels: KernelArrays, chip: RduChip, mode: str, orchestration: str, placement: Placement) -> RduResult:
    """Cost every kernel of a plan and aggregate the run's counters."""
    km = kernel_matrix(kernels)
    hw = hw_vector(chip, orchestration, placement.weight_ddr_fraction)
    times = kernel_times_jit(km, hw)
    orchestration = orchestration_times(km, hw)
    running = times - orchestration  # units idle while a kernel is configured and launched
    total = float(times.sum())
    ddr = float(np.sum(kernels.weight_bytes) * placement.weight_ddr_fraction)
    hbm = float(np.sum(kernels.weight_bytes) + np.sum(kernels.act_bytes)) - ddr
    return RduResult(
        mode=mode, fits=True, reason="", time_s=total, kernels=kernels.n_kernels,
        flops=float(np.sum(kernels.flops)), hbm_bytes=hbm, ddr_bytes=ddr,
        onchip_bytes=float(np.sum(kernels.onchip_bytes)), launch_s=float(orchestration.sum()),
        pcu_occupancy=float(np.sum(running * kernels.pcus) / (total * chip.pcus)),
        pmu_occupancy=float(np.sum(running * pmus_in_use(kernels, running, chip)) / (total * chip.pmus)),
        hbm_bw_fraction=hbm / total / chip.hbm_bandwidth,
        max_ops_per_kernel=int(np.max(kernels.ops_per_kernel())),
    )


def evaluate(graph: Graph, chip: RduChip, mode: str, use_jit: bool = True) -> RduResult:
    """Time and counters of ``graph`` on one SN40L socket under ``mode`` (unfused, fused-so, fused-ho).

    Article, "Impact of Operator Fusion": unfused = every operator its own kernel with
    intermediates in off-chip memory; fused = streaming-dataflow kernels; SO/HO = software- or
    hardware-orchestrated kernel launch. Out-of-memory configurations return ``fits=False``.
    """
    if mode not in EXECUTION_MODES:
        raise ConfigError("execution mode", mode, ", ".join(EXECUTION_MODES))
    placement = place(graph, chip)
    if not placement.fits:
        return oom(mode, placement.reason)
    fusion, orchestration = EXECUTION_MODES[mode]
    kernels = plan(rdu_optable(graph, chip), chip, fusion, use_jit=use_jit)
    return summarise(kernels, chip, mode, orchestration, placement)


def evaluate_modes(graph: Graph, chip: RduChip, use_jit: bool = True) -> dict[str, RduResult]:
    """All three execution modes of the article's Figure 6, sharing one op table and one fused plan."""
    placement = place(graph, chip)
    if not placement.fits:
        return {m: oom(m, placement.reason) for m in EXECUTION_MODES}
    tab = rdu_optable(graph, chip)
    unfused = plan(tab, chip, "unfused", use_jit=use_jit)
    fused = plan(tab, chip, "fused", use_jit=use_jit)
    return {
        "unfused": summarise(unfused, chip, "unfused", "so", placement),
        "fused-so": summarise(fused, chip, "fused-so", "so", placement),
        "fused-ho": summarise(fused, chip, "fused-ho", "ho", placement),
    }
