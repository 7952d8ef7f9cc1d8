"""Where the package's data files live: one definition for every layer."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PACKAGE_DIR / "data"          # platform files, CoE defaults and profiles, the article's claims
PLATFORM_DIR = DATA_DIR / "platforms"
