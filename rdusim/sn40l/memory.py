"""Three-tier memory of the SN40L: where weights, KV cache and activations live, and whether they fit.

Article, "SN40L Architecture" and "Model Hosting and Switching Costs": SRAM (PMUs) holds stage
buffers; HBM holds what is read often (KV cache, activations, weights when they fit); DDR holds
the rest. Placement here: KV cache, activations and optimizer state in HBM, weights in HBM while
room is left, the remainder of the weights in DDR (read at DDR bandwidth). Past HBM plus DDR the
configuration is out of memory: a result, not an error.
"""
from __future__ import annotations

from dataclasses import dataclass

from rdusim.core.accounting import graph_footprint
from rdusim.core.graph import Graph
from rdusim.sn40l.chip import RduChip


@dataclass(frozen=True)
class Placement:
    """Bytes per device in each tier and the fraction of weight bytes read from DDR."""

    weight_bytes: float
    other_bytes: float           # KV cache, activations, optimizer state
    hbm_used: float
    ddr_used: float
    weight_ddr_fraction: float
    fits: bool
    reason: str = ""


def place(graph: Graph, chip: RduChip) -> Placement:
    """Place ``graph``'s data in HBM and DDR of one socket (see module docstring)."""
    return place_bytes(*graph_footprint(graph), chip)


def place_bytes(weights: float, other: float, chip: RduChip) -> Placement:
    """Place ``weights`` bytes of weights and ``other`` bytes of KV cache, activations and optimizer
    state in HBM and DDR of one socket: the one memory rule of the SN40L model (``rdusim predict``'s
    fits and the evaluator's both come from it)."""
    if other > chip.hbm_bytes:
        return Placement(weights, other, other, 0.0, 0.0, False,
                         f"KV cache and activations need {other / 1e9:.1f} GB > {chip.hbm_bytes / 1e9:.0f} GB HBM")
    in_hbm = min(weights, chip.hbm_bytes - other)
    in_ddr = weights - in_hbm
    if in_ddr > chip.ddr_bytes:
        return Placement(weights, other, chip.hbm_bytes, in_ddr, 1.0, False,
                         f"weights need {weights / 1e9:.1f} GB > HBM + DDR per socket")
    fraction = in_ddr / weights if weights else 0.0
    return Placement(weights, other, in_hbm + other, in_ddr, fraction, True)
