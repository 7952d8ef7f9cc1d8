"""Layer 1, the shared vocabulary: the operator graph (:mod:`~rdusim.core.graph`), its flattened op
table (:mod:`~rdusim.core.optable`), byte and FLOP accounting every platform model needs
(:mod:`~rdusim.core.accounting`), units (:mod:`~rdusim.core.units`), errors
(:mod:`~rdusim.core.errors`), platform files (:mod:`~rdusim.core.platforms`) and data paths.

Imports nothing else of this project.
"""
