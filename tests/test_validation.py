import pandas as pd
import pytest

from rdusim.core.errors import ConfigError
from rdusim.report.validation import claims_frame, load_claims, passes


def test_checks():
    assert passes("rel", 10, 10.9, 0.1) and not passes("rel", 10, 11.2, 0.1)
    assert passes("range", [1.5, 3.0], 2.0, 0.0) and not passes("range", [1.5, 3.0], 3.2, 0.0)
    assert passes("below", 150, 148, 0) and not passes("below", 150, 150, 0)
    assert passes("above", 0.85, 0.9, 0) and not passes("above", 0.85, 0.8, 0)
    assert not passes("rel", 10, float("nan"), 0.1)


def test_claim_ids_unique_and_unmodelled_marked():
    ids = [c["id"] for c in load_claims()]
    assert len(ids) == len(set(ids))
    frame = claims_frame([])
    assert set(frame["status"]) == {"not modelled"}


def test_unknown_claim_id_is_an_error():
    with pytest.raises(ConfigError, match="paper_claims"):
        claims_frame([pd.DataFrame({"id": ["nope"], "reproduced": [1.0]})])
