"""Speculative decoding: a draft model proposes ``k`` tokens, the target verifies them in one pass.

With per-token acceptance rate ``a`` (each drafted token accepted independently with probability a;
the first rejection ends the run, and the verify pass always yields one token of its own), the tokens
one verify step produces are, in expectation (Leviathan et al. 2023, eq. 1):

    tau(k, a) = (1 - a^(k+1)) / (1 - a)          (k + 1 when a = 1)

and one step costs ``k`` decode steps of the draft plus one pass of the target over ``k + 1`` tokens
per sequence. The verify pass is costed as a decode step of ``B (k + 1)`` sequences at the same
context: it reads the weights once and multiplies ``k + 1`` times as many tokens; its KV reads are
counted once per verified position (an upper bound: an engine's attention kernel reads each cached
block once per step). The time per output token is ``(k t_draft + t_verify) / tau``.

Defaults (``rdusim/data/speculative.yaml``): ``k`` assumed, ``a`` the one acceptance rate fitted to
SambaNova's published Llama-3.1-70B rate (:mod:`rdusim.report.speculative`).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from rdusim.core.checks import number, whole
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.units import to_si

SPECULATIVE_FILE = DATA_DIR / "speculative.yaml"
MAX_DRAFT_TOKENS = 64


@lru_cache(maxsize=None)
def speculative_defaults() -> dict[str, float]:
    """``{"draft_tokens": k, "acceptance": a}`` from ``speculative.yaml``."""
    raw = mapping("speculative", load_yaml(SPECULATIVE_FILE, "speculative"), "a mapping of constant blocks")
    si = {**to_si(raw.get("assumed") or {}, "speculative.assumed"), **to_si(raw.get("fitted") or {}, "speculative.fitted")}
    return {"draft_tokens": int(si["draft_tokens"]), "acceptance": float(si["acceptance"])}


def check_draft_tokens(value, where: str = "") -> int:
    """``draft_tokens`` as a whole number from 1 to 64, else a ConfigError naming it (``where``: a row prefix)."""
    return whole(f"{where}draft_tokens", value, 1, MAX_DRAFT_TOKENS, "tokens the draft proposes per verify step")


def check_acceptance(value, where: str = "") -> float:
    """``acceptance`` as a probability in [0, 1], else a ConfigError naming it (``where``: a row prefix)."""
    return number(f"{where}acceptance", value, 0.0, 1.0, what="probability that the target accepts a drafted token")


def tokens_per_verify(k, a):
    """Expected tokens one verify step yields: ``(1 - a^(k+1)) / (1 - a)``, ``k + 1`` at ``a = 1``."""
    k = np.asarray(k, dtype=float)
    a = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(a < 1.0, (1.0 - a ** (k + 1.0)) / (1.0 - np.where(a < 1.0, a, 0.0)), k + 1.0)
    return float(tau) if tau.ndim == 0 else tau


def step_time_per_token(t_draft, t_verify, k, a):
    """Time per output token with speculative decoding: ``(k t_draft + t_verify) / tau(k, a)``."""
    return (np.asarray(k, dtype=float) * t_draft + t_verify) / tokens_per_verify(k, a)
