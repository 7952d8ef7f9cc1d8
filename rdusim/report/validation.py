"""Compare reproduced numbers with the article's claims (``rdusim/data/paper_claims.yaml``).

This module is the only reader of the claims file: model code never sees the article's results.
"""
from __future__ import annotations

import math
from functools import lru_cache

import pandas as pd

from rdusim.core.loader import load_yaml
from rdusim.core.errors import ConfigError
from rdusim.core.paths import DATA_DIR

CLAIMS_FILE = DATA_DIR / "paper_claims.yaml"
CHECKS = ("rel", "range", "below", "above", "at_least")
COLUMNS = ["id", "claim", "source", "paper", "reproduced", "tolerance", "check", "status", "basis", "why", "note"]
PREDICTED = "predicted"


@lru_cache(maxsize=None)
def load_claims() -> tuple[dict, ...]:
    """The article's claims, in file order."""
    claims = load_yaml(CLAIMS_FILE, "claims")
    for c in claims:
        if c["check"] not in CHECKS:
            raise ConfigError(f"claims.{c['id']}.check", c["check"], ", ".join(CHECKS))
    return tuple(claims)


def passes(check: str, paper, reproduced: float, tolerance: float) -> bool:
    """Whether ``reproduced`` satisfies the claim ``paper`` under ``check`` (see the claims file)."""
    if reproduced is None or (isinstance(reproduced, float) and math.isnan(reproduced)):
        return False
    if check == "rel":
        return abs(reproduced / float(paper) - 1.0) <= tolerance + 1e-12
    if check == "range":
        low, high = paper
        return low * (1 - tolerance) - 1e-12 <= reproduced <= high * (1 + tolerance) + 1e-12
    if check == "below":
        return reproduced < float(paper)
    if check == "above":
        return reproduced > float(paper)
    if check == "at_least":
        return reproduced >= float(paper)
    raise ConfigError("check", check, ", ".join(CHECKS))


def claims_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per claim: paper value, reproduced value, tolerance, ``pass``/``fail``/``not modelled``.

    ``parts`` are frames with columns ``id``, ``reproduced`` and optional ``note`` and ``basis``,
    written by the pipeline stages that compute them. An id that names no claim is an error.

    ``basis`` says what the reproduced value rests on: ``predicted`` (no fit used it; the default),
    ``calibrated: <what it was fitted to>`` or ``input``. ``why`` is filled for failing claims only,
    from the claim's ``why`` in the claims file: one sentence on what the article must have measured
    or assumed differently.
    """
    found: dict[str, tuple[float, str, str]] = {}
    known = {c["id"] for c in load_claims()}
    for part in parts:
        for row in part.itertuples(index=False):
            if row.id not in known:
                raise ConfigError("claim id", row.id, "an id of rdusim/data/paper_claims.yaml")
            basis = getattr(row, "basis", PREDICTED)
            basis = PREDICTED if not isinstance(basis, str) or not basis else basis
            found[row.id] = (float(row.reproduced), str(getattr(row, "note", "") or ""), basis)
    rows = []
    for c in load_claims():
        reproduced, note, basis = found.get(c["id"], (float("nan"), "", ""))
        if c["id"] in found:
            status = "pass" if passes(c["check"], c["paper"], reproduced, c["tolerance"]) else "fail"
        else:
            status = "not modelled"
        paper = c["paper"]
        rows.append({
            "id": c["id"], "claim": c["claim"], "source": c["source"],
            "paper": f"{paper[0]}-{paper[1]}" if isinstance(paper, list) else paper,
            "reproduced": reproduced, "tolerance": c["tolerance"], "check": c["check"],
            "status": status, "basis": basis, "why": c.get("why", "") if status == "fail" else "", "note": note,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def paper_value(claim_id: str):
    """The article's value for ``claim_id`` (a number, or [low, high] for a range), or None if the
    claims file has no such claim. Figures draw these as reference marks."""
    for c in load_claims():
        if c["id"] == claim_id:
            return c["paper"]
    return None
