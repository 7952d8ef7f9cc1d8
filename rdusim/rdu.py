"""Deprecated import path, kept for existing users: the chip lives in :mod:`rdusim.sn40l.chip`
(``from rdusim.sn40l import RduChip``; see CHANGELOG.md, 0.2.0)."""
from rdusim.sn40l.chip import RduChip

__all__ = ["RduChip"]
