"""Layer 4, scenarios that compare platforms: :mod:`~rdusim.scenarios.predict` (dispatch a row to the
SN40L or the GPU model), :mod:`~rdusim.scenarios.footprint` (experts per node, nodes per CoE),
:mod:`~rdusim.scenarios.coe` (Samba-CoE latency), :mod:`~rdusim.scenarios.serve` (trace-driven
serving) and :mod:`~rdusim.scenarios.sweep` (design-space sweeps).

May import the platform models (:mod:`rdusim.sn40l`, :mod:`baselines`), :mod:`benchmarks` and
:mod:`rdusim.core`; never :mod:`rdusim.report`.
"""
