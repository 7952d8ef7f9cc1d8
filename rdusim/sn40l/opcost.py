"""What one operator costs on one SN40L socket: its work on a single PCU and the PMUs its stage
buffer and its weights take when fused (article, "Pattern Compute Unit" and "Pattern Memory Unit").

:func:`rdu_optable` flattens a graph into the shared :class:`~rdusim.core.optable.OpTable` with these
SN40L fields filled in.
"""
from __future__ import annotations

import math
from functools import partial

from rdusim.core.graph import DTYPE_BYTES, Graph, Kind, Op
from rdusim.core.optable import NON_STAGE, OpTable, build_optable
from rdusim.sn40l.chip import RduChip


def matmul_utilisation(op: Op, chip: RduChip) -> float:
    """Fraction of a systolic array's MACs doing useful work for this matmul's M and N.

    An output-stationary array of rows x cols computes a rows x cols output tile at a time; a dimension
    smaller than the array (M = batch in decode) or not a multiple of it leaves cells idle.
    """
    _, m, n, _ = op.mm
    r, c = chip.systolic_rows, chip.systolic_cols
    return (m / (math.ceil(m / r) * r)) * (n / (math.ceil(n / c) * c))


def op_work_seconds(op: Op, chip: RduChip) -> float:
    """Time the op would take on a single PCU: systolic for matmuls, SIMD passes for the rest."""
    if op.kind in (Kind.MATMUL, Kind.ATTENTION):
        return op.flops / (chip.mm_flops_per_pcu * matmul_utilisation(op, chip))
    if op.kind in NON_STAGE:
        return 0.0
    elements = op.simd_elements
    per_element = op.flops / elements if elements else 0.0
    passes = max(1, math.ceil(per_element / chip.simd_stages))
    return elements * passes / chip.simd_elements_per_pcu


def _tile_bytes(op: Op, chip: RduChip) -> float:
    out = op.output
    if op.kind == Kind.TRANSPOSE:
        # a reordering buffer must hold a whole block of the two permuted dimensions
        block = out.shape[-1] * (out.shape[-2] if len(out.shape) > 1 else 1)
        return min(out.nbytes, block * DTYPE_BYTES[out.dtype])
    return min(out.nbytes, chip.stream_tile_rows * out.shape[-1] * DTYPE_BYTES[out.dtype])


def _weights_resident(op: Op, chip: RduChip) -> bool:
    """Weights stay on chip when many tiles stream past them (rows > one tile) and they fit in half
    the PMUs; otherwise they stream through a double buffer."""
    rows = op.output.numel // op.output.shape[-1]
    return rows > chip.stream_tile_rows and op.weight_bytes <= chip.sram_bytes / 2


def op_fields(op: Op, chip: RduChip) -> tuple[float, float, float]:
    """``(work_s, buffer_pmus, weight_pmus)`` of ``op`` on ``chip``: seconds on one PCU, PMUs of its
    output stage buffer (a double-buffered tile), PMUs holding its weights (all of them when they
    stay resident, else a double buffer of 2)."""
    pmu = chip.pmu_bytes
    work = op_work_seconds(op, chip)
    buffer_pmus = max(1, math.ceil(2 * _tile_bytes(op, chip) / pmu))
    weight_pmus = 0.0
    if op.weight_bytes:
        resident = _weights_resident(op, chip)
        weight_pmus = math.ceil(op.weight_bytes / pmu) if resident else 2
    return work, buffer_pmus, weight_pmus


def rdu_optable(graph: Graph, chip: RduChip) -> OpTable:
    """Flatten ``graph`` into an :class:`OpTable` with the SN40L per-op fields of ``chip``."""
    return build_optable(graph, partial(op_fields, chip=chip))
