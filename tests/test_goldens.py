"""CI regression of numbers: tables recomputed now must equal the committed goldens.

A deliberate model change regenerates them with ``make goldens`` (``python -m rdusim.report.goldens --write``).
"""
import pandas as pd
import pytest

from rdusim.report.goldens import GOLDEN_DIR, RELATIVE_TOLERANCE, compute
from rdusim.report.tables import GOLDEN_TABLES


@pytest.mark.parametrize("name", sorted(GOLDEN_TABLES))
def test_table_matches_golden(name, tmp_path):
    golden = pd.read_csv(GOLDEN_DIR / f"{name}.csv")
    path = tmp_path / f"{name}.csv"
    compute(name).to_csv(path, index=False)  # same round trip as the golden file
    fresh = pd.read_csv(path)
    assert list(fresh.columns) == list(golden.columns)
    assert len(fresh) == len(golden)
    for col in golden.columns:
        if pd.api.types.is_numeric_dtype(golden[col]):
            assert fresh[col].to_numpy() == pytest.approx(golden[col].to_numpy(), rel=RELATIVE_TOLERANCE, nan_ok=True), col
        else:
            assert fresh[col].fillna("").astype(str).tolist() == golden[col].fillna("").astype(str).tolist(), col
