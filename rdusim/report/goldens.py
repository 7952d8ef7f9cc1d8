"""Golden copies of the result tables under ``tests/golden`` (the CI regression of numbers).

``python -m rdusim.report.goldens --write`` (or ``make goldens``) regenerates them from
``config/config.yaml`` on purpose; review the diff before committing. The tests compare freshly
computed tables with these files under the tolerances below.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from rdusim.core.loader import load_yaml
from rdusim.core.paths import PACKAGE_DIR
from rdusim.report.tables import GOLDEN_TABLES

ROOT = PACKAGE_DIR.parent
GOLDEN_DIR = ROOT / "tests" / "golden"
CONFIG_FILE = ROOT / "config" / "config.yaml"
# Numbers are computed, not measured: they only move when the model or its inputs change.
RELATIVE_TOLERANCE = 1e-6


def load_config() -> dict:
    return load_yaml(CONFIG_FILE, "config")


def compute(name: str) -> pd.DataFrame:
    """The table ``name`` as the current model computes it from the default config."""
    return GOLDEN_TABLES[name](load_config())


def write_all() -> list[Path]:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name in GOLDEN_TABLES:
        path = GOLDEN_DIR / f"{name}.csv"
        compute(name).to_csv(path, index=False)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="regenerate tests/golden/*.csv")
    args = parser.parse_args()
    if not args.write:
        parser.error("pass --write to regenerate the golden tables")
    for path in write_all():
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
