"""Plan one decoder layer, then tile: the SN40L run of a model from a graph with one copy of each layer.

The planner never lets a kernel span two decoder layers (a layer is one compiled section, reused
layer after layer; article, "Streaming Dataflow"), and a model's decoder layers are identical. So the
kernels of an ``L``-layer model are those of its head, ``L`` copies of the kernels of one layer, and
those of its tail. :func:`plan_tiled` plans a graph built with one layer of each repeated kind (see
:func:`benchmarks.decoder.layer_graph`) with the same op table, planner and kernel summaries as
:func:`~rdusim.sn40l.run.evaluate`, and repeats each repeated layer's kernels in place; the kernel
arrays are then those of the full graph, element for element. Costs re-evaluate them for any
bandwidth, latency or launch setting (:func:`tiled_time`, :func:`evaluate_tiled`).

``tests/test_tiled.py`` checks every model, phase and mode against the full graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rdusim.core.accounting import KernelArrays, repeated_footprint
from rdusim.core.errors import ConfigError
from rdusim.core.graph import Graph
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.cost import hw_vector, kernel_matrix, kernel_times_jit
from rdusim.sn40l.fusion import plan
from rdusim.sn40l.memory import place_bytes
from rdusim.sn40l.opcost import rdu_optable
from rdusim.sn40l.run import EXECUTION_MODES, RduResult, oom, summarise


@dataclass(frozen=True)
class TiledPlan:
    """The kernels of a whole model (layers repeated), their cost matrix and the model's footprint."""

    kernels: KernelArrays     # start/stop index the one-layer graph's op table
    matrix: np.ndarray        # :func:`~rdusim.sn40l.cost.kernel_matrix` of ``kernels``
    weight_bytes: float
    other_bytes: float        # KV cache, activations, optimizer state


def repeat_kernels(kernels: KernelArrays, kernel_layer: np.ndarray, repeats: dict[int, int]) -> KernelArrays:
    """``kernels`` with the run of kernels of each layer ``l`` in ``repeats`` repeated ``repeats[l]`` times
    in place (``kernel_layer``: the layer of each kernel's ops)."""
    n = kernels.n_kernels
    edges = np.flatnonzero(np.diff(kernel_layer)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [n]])
    seen: set[int] = set()
    parts = []
    for a, b in zip(starts, stops):
        tag = int(kernel_layer[a])
        if tag in repeats and tag in seen:
            raise ConfigError("repeated layer", tag, "one contiguous run of ops per repeated layer")
        seen.add(tag)
        parts.append(np.tile(np.arange(a, b), repeats.get(tag, 1)))
    idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return KernelArrays(**{f: getattr(kernels, f)[idx] for f in KernelArrays.__dataclass_fields__})


def plan_tiled(graph: Graph, repeats: dict[int, int], chip: RduChip, fusion: str) -> TiledPlan:
    """Plan ``graph`` (``fusion``: ``unfused`` or ``fused``) with the ops of layer ``l`` standing for
    ``repeats[l]`` identical layers. Depends on the chip's compute units and SRAM, not on its
    bandwidths, latencies, launch costs or off-chip capacities."""
    tab = rdu_optable(graph, chip)
    reduced = plan(tab, chip, fusion)
    kernels = repeat_kernels(reduced, tab.layer[reduced.start], repeats)
    weights, other = repeated_footprint(graph, repeats)
    return TiledPlan(kernels, kernel_matrix(kernels), weights, other)


def tiled_time(tplan: TiledPlan, chip: RduChip, orchestration: str) -> tuple[bool, str, float]:
    """``(fits, reason, time_s)`` of a planned model on ``chip`` (the evaluator's placement and kernel costs)."""
    placement = place_bytes(tplan.weight_bytes, tplan.other_bytes, chip)
    if not placement.fits:
        return False, placement.reason, float("nan")
    hw = hw_vector(chip, orchestration, placement.weight_ddr_fraction)
    return True, "", float(kernel_times_jit(tplan.matrix, hw).sum())


def evaluate_tiled(graph: Graph, repeats: dict[int, int], chip: RduChip, mode: str) -> RduResult:
    """:func:`~rdusim.sn40l.run.evaluate` of the full graph, from the graph with one copy of each layer."""
    if mode not in EXECUTION_MODES:
        raise ConfigError("execution mode", mode, ", ".join(EXECUTION_MODES))
    fusion, orchestration = EXECUTION_MODES[mode]
    tplan = plan_tiled(graph, repeats, chip, fusion)
    placement = place_bytes(tplan.weight_bytes, tplan.other_bytes, chip)
    if not placement.fits:
        return oom(mode, placement.reason)
    return summarise(tplan.kernels, chip, mode, orchestration, placement)
