"""Rows of ``predict(frame)`` beyond dense BF16: MoE models, other formats, speculative decoding.

:func:`predict_extended` splits a frame: dense BF16 rows without a draft go to the operator-graph
path (``dense``, :func:`rdusim.scenarios.predict._predict_dense`, passed in), MoE models and rows whose
weights or KV cache are not BF16 to the closed-form layer model (:mod:`rdusim.scenarios.closed_form`).
Rows with a ``draft`` are then costed as speculative decoding (:mod:`rdusim.scenarios.speculative`): the
draft's decode step and the target's verify pass are two more predictions of the same frame machinery
(the verify pass as a decode step of ``batch x (k + 1)`` sequences), and the draft's weights and KV
cache must fit beside the target's. Every row names its ``precision`` and ``kv_precision`` and gets
``tokens_per_s_per_user = 1000 / decode_ms_per_token``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmarks.moe import is_moe
from rdusim.core.checks import whole
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.core.precision import DEFAULT_PRECISION, kv_precision, weight_precision
from rdusim.scenarios.closed_form import (
    _device_bytes,
    arch_of,
    check_closed_form,
    known_model,
    predict_closed_form,
)
from rdusim.scenarios.predict_light import DEFAULTS, SIZE_LIMITS, check_row
from rdusim.scenarios.speculative import (
    check_acceptance,
    check_draft_tokens,
    speculative_defaults,
    step_time_per_token,
    tokens_per_verify,
)

EXTENSION_COLUMNS = ("precision", "kv_precision", "hot_experts_in_hbm", "draft", "draft_tokens", "acceptance")
BASE_COLUMNS = ("platform", "model", "batch", "tp", "prompt", "gen", "execution", "stack")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _is_whole(col: str, v) -> bool:
    try:
        whole(col, v, 1, SIZE_LIMITS[col])
    except ConfigError:
        return False
    return True


def _fill(df: pd.DataFrame) -> pd.DataFrame:
    for col, default in DEFAULTS.items():
        if col not in df:
            df[col] = default
    for col in ("precision", "kv_precision"):
        df[col] = df[col].astype(object).where(df[col].notna(), DEFAULT_PRECISION) if col in df else DEFAULT_PRECISION
    for col in ("hot_experts_in_hbm", "draft", "draft_tokens", "acceptance"):
        df[col] = df[col].astype(object).where(df[col].notna(), None) if col in df else None
    for col in ("execution", "stack"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


def _closed_row(r: dict, i: int, constants) -> dict:
    where = f"row {i}: "
    try:
        sizes = {k: whole(k, r[k], 1, SIZE_LIMITS[k]) for k in ("batch", "tp", "prompt", "gen")}
        hot = r["hot_experts_in_hbm"]
        if hot is not None:
            hot = whole("hot_experts_in_hbm", hot, 0, 2**31)
            if not is_moe(r["model"]):
                raise ConfigError("hot_experts_in_hbm", hot, f"only for a mixture-of-experts model ({r['model']} is dense)")
        if load_platform(str(r["platform"])) and not known_model(r["model"]):
            check_row(r["platform"], r["model"], 1, 1, 1, 1, None)  # the dense zoo's error, listing every model
        mode, stack = check_closed_form(str(r["platform"]), r["model"], sizes["tp"], r["execution"], r["precision"],
                                        r["kv_precision"], r["stack"])
        res = predict_closed_form(str(r["platform"]), r["model"], sizes["batch"], sizes["tp"], sizes["prompt"],
                                  sizes["gen"], mode, r["precision"], r["kv_precision"], hot, const=constants,
                                  stack=stack)
    except ConfigError as err:
        raise ConfigError(where + err.field, err.given, err.allowed) from None
    return {"execution": mode, "stack": stack, "ttft_ms": res["ttft_s"] * 1e3, "decode_ms_per_token": res["decode_s"] * 1e3,
            "weight_bytes": res["weight_bytes"], "fits": res["fits"], "reason": res["reason"],
            "experts_touched": res["experts_touched"], "hot_experts_in_hbm": res["hot_experts_in_hbm"]}


def device_bytes(platform: str, model: str, tp: int, precision: str, kv_prec: str, batch: int, positions: int) -> float:
    """Weights and KV cache one device holds (either zoo, any format)."""
    a = arch_of(model)
    nonexpert, experts, kv = _device_bytes(a, int(tp), weight_precision(precision).bytes_per_value,
                                           kv_precision(kv_prec).bytes_per_value, batch, positions)
    return nonexpert + experts + kv


def predict_extended(frame: pd.DataFrame, constants, dense) -> pd.DataFrame:
    """:func:`rdusim.scenarios.predict.predict` of a frame with optional columns or MoE models (see the
    module docstring); ``dense`` predicts the dense BF16 rows."""
    df = _fill(frame.copy().reset_index(drop=True))
    for col in ("batch", "tp", "prompt", "gen"):
        values = df[col].to_numpy(dtype=object)
        try:
            df[col] = np.array([whole(col, v, 1, SIZE_LIMITS[col]) for v in values], dtype=np.int64)
        except ConfigError:
            bad = next(i for i, v in enumerate(values) if not _is_whole(col, v))
            whole(f"row {bad}: {col}", values[bad], 1, SIZE_LIMITS[col])
    for i, r in enumerate(df[["precision", "kv_precision"]].itertuples(index=False)):
        try:
            weight_precision(r.precision)
            kv_precision(r.kv_precision)
        except ConfigError as err:
            raise ConfigError(f"row {i}: {err.field}", err.given, err.allowed) from None
    closed = (df["model"].map(is_moe) | (df["precision"] != DEFAULT_PRECISION) | (df["kv_precision"] != DEFAULT_PRECISION)
              | df["hot_experts_in_hbm"].notna()).to_numpy()
    n = len(df)
    out = {k: np.full(n, np.nan) for k in ("ttft_ms", "decode_ms_per_token", "experts_touched")}
    out["weight_bytes"] = np.zeros(n)
    out["fits"] = np.ones(n, dtype=bool)
    out["reason"] = np.full(n, "", dtype=object)
    execution = df["execution"].to_numpy(dtype=object).copy()
    stacks = df["stack"].to_numpy(dtype=object).copy()
    hot = df["hot_experts_in_hbm"].to_numpy(dtype=object).copy()
    if (~closed).any():
        part = df.loc[~closed, list(BASE_COLUMNS)]
        try:
            res = dense(part, constants)
        except ConfigError as err:  # the dense path numbers rows of its part: name the frame's row
            field = err.field
            if field.startswith("row "):
                j, _, rest = field[4:].partition(": ")
                field = f"row {int(part.index[int(j)])}: {rest}"
            raise ConfigError(field, err.given, err.allowed) from None
        idx = part.index.to_numpy()
        for k in ("ttft_ms", "decode_ms_per_token", "weight_bytes", "fits", "reason"):
            out[k][idx] = res[k].to_numpy()
        execution[idx] = res["execution"].to_numpy()
        stacks[idx] = res["stack"].to_numpy()
        out["experts_touched"][idx] = 0.0
    records = df.to_dict("records")
    for i in np.flatnonzero(closed):
        r = _closed_row(records[i], int(i), constants)
        for k in ("ttft_ms", "decode_ms_per_token", "weight_bytes", "fits", "reason", "experts_touched"):
            out[k][i] = r[k]
        execution[i] = r["execution"]
        stacks[i] = r["stack"]
        hot[i] = r["hot_experts_in_hbm"]
    df["execution"] = execution
    df["stack"] = stacks
    if df["hot_experts_in_hbm"].notna().any() or any(v is not None for v in hot):
        df["hot_experts_in_hbm"] = hot
    for k, v in out.items():
        df[k] = v
    df["weight_bytes"] = df["weight_bytes"].astype(np.int64)
    df["tokens_per_verify"] = 1.0
    spec = df["draft"].notna().to_numpy()
    if spec.any():
        _speculative(df, np.flatnonzero(spec), constants, dense)
    df["total_ms"] = df["ttft_ms"] + df["gen"].astype(float) * df["decode_ms_per_token"]
    df["tokens_per_s_per_user"] = 1e3 / df["decode_ms_per_token"]
    if not spec.any():
        df = df.drop(columns=[c for c in ("draft", "draft_tokens", "acceptance", "tokens_per_verify") if c not in frame])
    if "hot_experts_in_hbm" not in frame and df["hot_experts_in_hbm"].isna().all():
        df = df.drop(columns=["hot_experts_in_hbm"])
    df.index = frame.index
    return df


def _speculative(df: pd.DataFrame, rows: np.ndarray, constants, dense) -> None:
    """Speculative decoding of ``rows`` of ``df`` in place (see the module docstring)."""
    defaults = speculative_defaults()
    ks, accs = [], []
    for i in rows:
        where = f"row {int(i)}: "
        draft = df.at[i, "draft"]
        if not isinstance(draft, str) or not known_model(draft):
            try:
                check_row(df.at[i, "platform"], draft, 1, 1, 1, 1, None)
            except ConfigError as err:
                raise ConfigError(where + "draft", draft, err.allowed) from None
        if draft == df.at[i, "model"]:
            raise ConfigError(where + "draft", draft, f"a smaller model than the target ({df.at[i, 'model']})")
        k = df.at[i, "draft_tokens"]
        a = df.at[i, "acceptance"]
        ks.append(check_draft_tokens(defaults["draft_tokens"] if _missing(k) else k, where))
        accs.append(check_acceptance(defaults["acceptance"] if _missing(a) else a, where))
    k = np.array(ks)
    a = np.array(accs)
    base = df.loc[rows, list(BASE_COLUMNS) + ["precision", "kv_precision"]].copy()
    verify = base.copy()
    verify["batch"] = base["batch"].astype(np.int64) * (k + 1)
    drafter = base.copy()
    drafter["model"] = df.loc[rows, "draft"].to_numpy()
    try:
        v = predict_extended(verify.reset_index(drop=True), constants, dense)
        d = predict_extended(drafter.reset_index(drop=True), constants, dense)
    except ConfigError as err:
        field = err.field.split(": ", 1)[-1]
        raise ConfigError(f"row {int(rows[0])} (draft or verify pass): {field}", err.given, err.allowed) from None
    t_v = v["decode_ms_per_token"].to_numpy()
    t_d = d["decode_ms_per_token"].to_numpy()
    fits = df.loc[rows, "fits"].to_numpy() & v["fits"].to_numpy() & d["fits"].to_numpy()
    reason = np.where(~df.loc[rows, "fits"].to_numpy(), df.loc[rows, "reason"].to_numpy(),
                      np.where(~v["fits"].to_numpy(), "verify pass: " + v["reason"].astype(str).to_numpy(),
                               np.where(~d["fits"].to_numpy(), "draft: " + d["reason"].astype(str).to_numpy(), "")))
    reason = reason.astype(object)
    for j, i in enumerate(rows):  # the draft's weights and KV cache share the target's devices
        if not fits[j]:
            continue
        r = df.loc[i]
        p = load_platform(str(r["platform"]))
        pos = int(r["prompt"]) + int(r["gen"])
        need = sum(device_bytes(str(r["platform"]), m, int(r["tp"]), r["precision"], r["kv_precision"], int(r["batch"]), pos)
                   for m in (r["model"], r["draft"]))
        cap = p.dev("hbm_capacity") + (p.device.get("ddr_capacity", 0.0) if p.kind == "rdu" else 0.0)
        if need > cap:
            fits[j] = False
            reason[j] = f"target and draft need {need / 1e9:.1f} GB per device > {cap / 1e9:.0f} GB"
    dec = np.where(fits, step_time_per_token(t_d, t_v, k, a), np.nan)
    df.loc[rows, "ttft_ms"] = np.where(fits, df.loc[rows, "ttft_ms"].to_numpy() + d["ttft_ms"].to_numpy(), np.nan)
    df.loc[rows, "decode_ms_per_token"] = dec
    df.loc[rows, "fits"] = fits
    df.loc[rows, "reason"] = reason
    df["draft_tokens"] = df["draft_tokens"].astype(object)
    df["acceptance"] = df["acceptance"].astype(object)
    df.loc[rows, "draft_tokens"] = k
    df.loc[rows, "acceptance"] = a
    df.loc[rows, "tokens_per_verify"] = tokens_per_verify(k, a)


def largest_batch(fits, limit: int = SIZE_LIMITS["batch"]) -> int:
    """The largest batch ``b`` in 1..limit with ``fits(b)`` true (0 when none): doubling, then bisection.
    Memory need grows with the batch, so ``fits`` is true up to some batch and false beyond it. This is
    how ``--batch max`` (a maximum-throughput configuration) is resolved."""
    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
