"""Operational intensity of a graph under a partition into kernels (article Fig. 3; roofline).

Operational intensity = FLOPs / bytes that cross off-chip memory. Fusing operators keeps the
intermediates between them on chip, so fewer bytes cross and the intensity rises.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from rdusim.core.accounting import KernelArrays
from rdusim.core.graph import Graph
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.fusion import plan, plan_bounds
from rdusim.sn40l.opcost import rdu_optable


def offchip_bytes(k: KernelArrays) -> float:
    """Bytes all kernels move to and from off-chip memory (weights, inputs, outputs, intermediates)."""
    return float(np.sum(k.weight_bytes) + np.sum(k.act_bytes))


def intensity_at(graph: Graph, chip: RduChip, groups: list[list[str]] | str) -> tuple[float, float, KernelArrays]:
    """FLOPs, off-chip bytes and kernels of ``graph`` with ops grouped into kernels.

    ``groups`` lists op names per kernel in order, or is ``"unfused"`` / ``"fused"`` for the planner.
    """
    tab = rdu_optable(graph, chip)
    if isinstance(groups, str):
        kernels = plan(tab, chip, groups)
    else:
        order = [name for group in groups for name in group]
        if order != tab.names:
            raise ValueError(f"groups {groups} must list the ops {tab.names} in order")
        bounds = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
        kernels = plan_bounds(tab, chip, bounds)
    return float(np.sum(kernels.flops)), offchip_bytes(kernels), kernels


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """Operational intensity (FLOP/byte) where a roofline turns from memory- to compute-bound."""
    return peak_flops / bandwidth


def stage_table(graph: Graph, chip: RduChip, kernels: KernelArrays, kernel: int = 0) -> pd.DataFrame:
    """Stages of one fused kernel: op, PCUs allotted (one each plus a share in proportion to work), PMUs.

    Transposes and collectives take no PCU: a transpose is an access pattern of its stage buffer.
    """
    tab = rdu_optable(graph, chip)
    a, b = int(kernels.start[kernel]), int(kernels.stop[kernel])
    work = tab.work_s[a:b]
    stage = tab.is_stage[a:b].astype(float)
    spare = chip.pcus - stage.sum()
    total = work.sum()
    pcus = np.where(stage > 0, 1 + np.floor(spare * work / total), 0) if total > 0 else stage
    return pd.DataFrame({
        "stage": tab.names[a:b],
        "pcus": pcus.astype(int),
        "buffer_pmus": tab.buffer_pmus[a:b].astype(int),
        "weight_pmus": tab.weight_pmus[a:b].astype(int),
        "work_share": np.where(total > 0, work / total, 0.0),
    })
