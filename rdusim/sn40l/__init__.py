"""Layer 3, the SN40L platform model: the chip (:mod:`~rdusim.sn40l.chip`), per-op costs
(:mod:`~rdusim.sn40l.opcost`), the fusion planner (:mod:`~rdusim.sn40l.fusion`), the three-tier
memory (:mod:`~rdusim.sn40l.memory`), the kernel cost model with SO/HO launch
(:mod:`~rdusim.sn40l.cost`), the run of a graph (:mod:`~rdusim.sn40l.run`) and Fig. 3's operational
intensity (:mod:`~rdusim.sn40l.intensity`).

May import :mod:`rdusim.core` only (never :mod:`baselines`, the GPU model beside it).
"""
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.run import EXECUTION_MODES, RduResult, evaluate, evaluate_modes

__all__ = ["EXECUTION_MODES", "RduChip", "RduResult", "evaluate", "evaluate_modes"]
