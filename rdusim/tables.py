"""The result tables as functions of the pipeline configuration (the pandas API of the pipeline).

Each function takes the parsed ``config/config.yaml`` and returns the table that the pipeline writes
under ``results/``. Pipeline scripts and the golden-number tests call the same functions.
"""
from __future__ import annotations

import pandas as pd

from benchmarks.table1 import table1_frame

from .footprint import CoEDeployment, footprint_claims, footprint_frame


def table1_benchmarks(config: dict) -> pd.DataFrame:
    """``results/tables/table1_benchmarks.csv``: Table 1 with sizes computed from each architecture."""
    return table1_frame(list(config["benchmarks"])).convert_dtypes()


def fig8_footprint(config: dict) -> pd.DataFrame:
    """``results/tables/fig8_footprint.csv``: nodes per platform for 1..experts_max experts."""
    platforms = list(config["platforms"]["rdu"]) + list(config["platforms"]["gpu"])
    counts = list(range(1, int(config["coe"]["experts_max"]) + 1))
    return footprint_frame(platforms, counts, CoEDeployment.from_config(config["coe"])).convert_dtypes()


def claims_footprint(config: dict) -> pd.DataFrame:
    """``results/validation/parts/footprint.csv``: reproduced values of the capacity claims."""
    return footprint_claims(CoEDeployment.from_config(config["coe"]))


# Tables kept as golden data under tests/golden (name -> builder).
GOLDEN_TABLES = {
    "table1_benchmarks": table1_benchmarks,
    "fig8_footprint": fig8_footprint,
}
