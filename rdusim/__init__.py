"""rdusim: a performance model of Composition-of-Experts serving on the SambaNova SN40L RDU.

Layers, bottom up: :mod:`rdusim.core.graph` (operator-graph vocabulary shared by everything),
:mod:`benchmarks` (workload graphs), the SN40L model in :mod:`rdusim` and GPU baselines in
:mod:`baselines`, then the CoE model, the CLI and the pandas API on top.
"""
__version__ = "0.1.0"
