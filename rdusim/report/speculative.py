"""Public numbers against the model: the one fitted acceptance rate, and every other row predicted.

The rows are ``rdusim/data/public_checks.yaml``. SambaNova publishes Llama-3.1-70B and 405B on 16 SN40L
sockets at 457 and 129 output tokens/s per user with speculative decoding, but neither the draft model
nor the acceptance rate; the draft and draft length are assumed (the file says which), and the one
acceptance rate is fitted to the 70B row alone (``fit``), by bisection on the predicted rate, which grows
with the acceptance rate. The 405B row (``check``) is then a prediction. Rows with no published value
(``predict``: DeepSeek-R1 on 16 sockets, whose published rate is kept back; maximum-throughput
configurations, ``batch: max``) are reported as predicted. TensorRT-LLM v0.5's published H100 FP8 times
to first token name ``fitted_constant``: the GPU model's FP8 GEMM efficiency is fitted to them
(:mod:`rdusim.report.fp8_gemm`), so their basis says ``calibrated``.

``python -m rdusim.report.speculative --write`` refits and writes ``acceptance_fraction`` into
``rdusim/data/speculative.yaml``; run it again after a change to the SN40L platform files or stacks.
"""
from __future__ import annotations

import argparse
from functools import lru_cache

import pandas as pd

from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.yamltext import replace_number
from rdusim.scenarios.predict import predict_one
from rdusim.scenarios.speculative import SPECULATIVE_FILE, speculative_defaults

CHECKS_FILE = DATA_DIR / "public_checks.yaml"
ROLES = ("fit", "check", "predict")
# constants a check row may say it is (one of the rows) fitted to, and the command that fits each
FITTED_CONSTANTS = {"fp8_gemm_efficiency_vs_bf16_fraction": "python -m rdusim.report.fp8_gemm --write"}


@lru_cache(maxsize=None)
def load_checks() -> tuple[dict, ...]:
    """The rows of ``public_checks.yaml`` (exactly one with role ``fit``; ``fitted_constant`` only on a
    ``check`` row, naming one of :data:`FITTED_CONSTANTS`)."""
    rows = mapping("public checks", load_yaml(CHECKS_FILE, "public checks"), "a mapping with rows")["rows"]
    for r in rows:
        if r.get("role") not in ROLES:
            raise ConfigError(f"public_checks.{r.get('id')}.role", r.get("role"), ", ".join(ROLES))
        if "fitted_constant" in r and (r["role"] != "check" or r["fitted_constant"] not in FITTED_CONSTANTS):
            raise ConfigError(f"public_checks.{r.get('id')}.fitted_constant", r["fitted_constant"],
                              ", ".join(FITTED_CONSTANTS) + " on a row with role check")
    if sum(r["role"] == "fit" for r in rows) != 1:
        raise ConfigError("public_checks rows", [r["id"] for r in rows if r["role"] == "fit"], "exactly one row with role fit")
    return tuple(rows)


def _rate(request: dict, acceptance: float | None = None) -> dict:
    req = dict(request)
    if acceptance is not None and req.get("draft"):
        req["acceptance"] = acceptance
    return predict_one(**req)


def fit_acceptance(tolerance: float = 1e-6, draft_tokens: int | None = None) -> tuple[float, float]:
    """``(acceptance, predicted rate)`` that makes the ``fit`` row's predicted tokens/s per user equal its
    published value; the bound (0 or 1) and its rate when no rate in [0, 1] reaches it. ``draft_tokens``
    replaces the assumed draft length (for the sensitivity table)."""
    row = next(r for r in load_checks() if r["role"] == "fit")
    request = {**row["request"], **({"draft_tokens": draft_tokens} if draft_tokens else {})}
    target = float(row["published"])
    lo, hi = 0.0, 1.0
    rate = lambda a: _rate(request, a)[row.get("metric", "tokens_per_s_per_user")]  # noqa: E731
    if rate(hi) <= target:
        return hi, rate(hi)
    if rate(lo) >= target:
        return lo, rate(lo)
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rate(mid) < target else (lo, mid)
    a = round((lo + hi) / 2, 4)
    return a, rate(a)


def _basis(row: dict) -> str:
    """A row's basis: its own, else calibrated (the acceptance row; a row naming a fitted constant), else predicted."""
    if row.get("basis"):
        return row["basis"]
    if row["role"] == "fit":
        return "calibrated: acceptance rate fitted to this row"
    if row.get("fitted_constant"):
        n = sum(r.get("fitted_constant") == row["fitted_constant"] for r in load_checks())
        return f"calibrated: {row['fitted_constant']} fitted to the {n} rows that name it ({FITTED_CONSTANTS[row['fitted_constant']]})"
    return "predicted"


def public_checks_table() -> pd.DataFrame:
    """Every row of ``public_checks.yaml``: request, published and predicted tokens/s per user, error,
    basis (``calibrated: ...`` for the acceptance row and rows naming a fitted constant, else ``predicted``) and the assumptions."""
    defaults = speculative_defaults()
    out = []
    for r in load_checks():
        res = _rate(r["request"])
        published = r.get("published")
        metric = r.get("metric", "tokens_per_s_per_user")
        predicted = res[metric] if res["fits"] else None
        spec = bool(r["request"].get("draft"))
        out.append({
            "id": r["id"], "role": r["role"], "platform": res["platform"], "model": res["model"],
            "precision": res["precision"], "batch": res["batch"], "tp": res["tp"], "prompt": res["prompt"],
            "gen": res["gen"], "stack": res.get("stack"), "draft": res.get("draft") or "",
            "draft_tokens": res.get("draft_tokens") if spec else None,
            "acceptance": res.get("acceptance") if spec else None,
            "metric": metric, "unit": r.get("unit", ""), "published": published, "predicted": predicted,
            "error": (predicted / published - 1.0) if published and predicted else None,
            "tokens_per_s_per_user": res["tokens_per_s_per_user"], "decode_ms_per_token": res["decode_ms_per_token"], "fits": res["fits"], "reason": res["reason"],
            "basis": _basis(r),
            "assumed": (f"draft {res.get('draft')} x {res.get('draft_tokens')} tokens (assumed), acceptance "
                        f"{defaults['acceptance']:g} (fitted to sn40l16_llama31_70b_spec)" if spec else ""),
            "why": r.get("why", ""),
            "source": r["source"],
        })
    return pd.DataFrame(out)


def draft_length_sensitivity(lengths=(2, 3, 4, 5, 6)) -> pd.DataFrame:
    """The assumed draft length against the check: for each ``k``, the acceptance rate fitted to the
    ``fit`` row (``reaches: false`` when no rate does) and the ``check`` rows with a draft predicted with it."""
    checks = [r for r in load_checks() if r["role"] == "check" and r["request"].get("draft")]
    rows = []
    for k in lengths:
        a, rate = fit_acceptance(draft_tokens=k)
        fit = next(r for r in load_checks() if r["role"] == "fit")
        for r in checks:
            res = _rate({**r["request"], "draft_tokens": k}, a)
            pred = res["tokens_per_s_per_user"]
            rows.append({"draft_tokens": k, "acceptance_fitted": a, "fit_row": fit["id"],
                         "fit_row_predicted": rate, "fit_row_published": fit["published"],
                         "reaches": abs(rate / fit["published"] - 1) < 1e-3, "check_row": r["id"],
                         "check_published": r["published"], "check_predicted": pred,
                         "check_error": pred / r["published"] - 1 if pred else None,
                         "assumed_in_model": k == speculative_defaults()["draft_tokens"]})
    return pd.DataFrame(rows)


def write_acceptance(value: float) -> None:
    """Replace ``acceptance_fraction`` in ``speculative.yaml`` (comments kept)."""
    text = SPECULATIVE_FILE.read_text()
    new = replace_number(text, r"acceptance_fraction:\s*", f"{value:g}", f"{SPECULATIVE_FILE}: acceptance_fraction")
    SPECULATIVE_FILE.write_text(new)
    speculative_defaults.cache_clear()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the fitted acceptance rate to speculative.yaml")
    args = parser.parse_args(argv)
    a, rate = fit_acceptance()
    print(f"acceptance fitted to the 70B row: {a:g} (predicted {rate:.1f} tokens/s per user)")
    if args.write:
        write_acceptance(a)
        print(f"wrote {SPECULATIVE_FILE}")
    print(public_checks_table()[["id", "role", "metric", "published", "predicted", "error", "basis"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
