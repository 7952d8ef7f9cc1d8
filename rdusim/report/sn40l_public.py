"""``sn40l_public.csv``: every public SN40L number the project holds, published against predicted.

Sources: the article's Table 2 (speedups over the DGXs, and the SN40L latencies its expert-only cells
imply with the published GPU latencies) and its "under 50 experts" statement (Fig. 7); [P] Table IV /
[B] (Llama 3.1 rates on 16 sockets) and [HC] (the 8B model switch). ``basis`` is ``fitted`` where a
constant of the row's stack was fitted to that number, ``predicted`` where none was. The 70B and 405B
rates rest on speculative decoding: they are predicted with the draft, draft length and the one
acceptance rate of ``rdusim/data/public_checks.yaml`` (issue 21), fitted to the 70B rate. A rule
(``rule sn40l_public``) writes it; the report shows it as a table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.models import get_model, weight_bytes
from rdusim.core.platforms import load_platform
from rdusim.report.coe_tables import claims_fig7
from rdusim.report.sn40l_runtime import fit_targets, rate_2024
from rdusim.report.speculative import load_checks
from rdusim.report.validation import paper_value
from rdusim.scenarios.coe import load_profile, switch_bandwidth
from rdusim.scenarios.predict import predict_one

COLUMNS = ("source", "quantity", "platform", "model", "stack", "unit", "published", "predicted", "rel_err",
           "basis", "note")
# [P] Table IV / [B]: Llama 3.1 on sn40l-16, output tokens/s per user, BF16; the published rates are read
# from public_checks.yaml (their one home), by model and with or without speculative decoding
RATE_MODELS = (("llama3.1-8b", False), ("llama3.1-70b", True), ("llama3.1-405b", True))


def _row(source, quantity, platform, model, stack, unit, published, predicted, basis, note=""):
    rel = predicted / published - 1 if np.isfinite(predicted) else np.nan
    return dict(zip(COLUMNS, (source, quantity, platform, model, stack, unit, published, predicted, rel, basis, note)))


def public_rows(table2: pd.DataFrame, fig7: pd.DataFrame, inferred: pd.DataFrame) -> pd.DataFrame:
    """The table from the pipeline's Table 2, Fig. 7 and recovered-latency tables plus ``rdusim predict``."""
    rows = []
    for r in inferred.itertuples():
        rows.append(_row("[A] Table 2 with NeMo's GPU latencies", f"SN40L Node expert latency, BS 1, 128 in, {r.gen} out "
                         f"(GPU latency / speedup vs {r.baseline})", "sn40l-node", "llama2-7b", r.stack, "ms",
                         r.sn40l_inferred_ms, r.sn40l_model_ms, "fitted", f"{r.arithmetic}; GPU: {r.gpu_source}"))
    paper = table2[(table2.profile == "paper") & (table2.metric != "oom_150_experts")]
    for r in paper.itertuples():
        rows.append(_row("[A] Table 2", f"{r.metric} speedup over {r.baseline}", "sn40l-node", "llama2-7b",
                         "sambaflow-2023", "x", float(r.paper), float(r.reproduced),
                         "fitted" if str(r.basis).startswith("calibrated") else "predicted",
                         f"{r.experts} experts, paper profile; DGX: {r.gpu_source}"))
    for r in claims_fig7(fig7).itertuples():
        base = "dgx-" + r.id.rsplit("_", 1)[1]
        rows.append(_row("[A] 'Under 50 experts' (Fig. 7)", f"CoE latency of {base} over SN40L Node, BS 1, 20 out",
                         "sn40l-node", "llama2-7b", "sambaflow-2023", "x", float(paper_value(r.id)),
                         r.reproduced, "predicted", r.note))
    checks, run24, targets = load_checks(), rate_2024(), fit_targets()
    for model, speculative in RATE_MODELS:
        rate = float(next(c["published"] for c in checks if c["request"]["model"] == model
                          and c["request"]["platform"] == run24["platform"]
                          and bool(c["request"].get("draft")) == speculative))
        out = predict_one(run24["platform"], model, 1, run24["tp"], run24["prompt"], run24["gen"])
        plain = 1e3 / out["decode_ms_per_token"] if out["fits"] else np.nan
        if speculative:  # the draft, its length and the fitted acceptance rate of public_checks.yaml (issue 21)
            check = next(c for c in checks if c["request"]["model"] == model and c["request"].get("draft"))
            spec = predict_one(**check["request"])
            rows.append(_row("[P] Table IV, [B]", "output tokens/s per user, 16 sockets, TP16, BF16",
                             run24["platform"], model, spec["stack"], "tokens/s", rate,
                             spec["tokens_per_s_per_user"] if spec["fits"] else np.nan,
                             "fitted" if check["role"] == "fit" else "predicted",
                             f"speculative decoding: draft {spec['draft']} x {spec['draft_tokens']} tokens (assumed), "
                             f"acceptance {spec['acceptance']:g} (fitted to the 70B rate); plain decoding: {plain:.0f}"))
        else:
            rows.append(_row("[P] Table IV, [B]", "output tokens/s per user, 16 sockets, TP16, BF16",
                             run24["platform"], model, out["stack"], "tokens/s", rate, plain, "fitted",
                             f"{run24['prompt']} in, {run24['gen']} out, batch 1: 1 / decode step"))
    model, published = targets["switch_time"]["model"], float(targets["switch_time"]["seconds"])  # [HC]
    p = load_platform(run24["platform"])
    seconds = weight_bytes(get_model(model)) / switch_bandwidth(p, load_profile("paper"), run24["tp"])
    rows.append(_row("[HC]", "model switch time (DDR to HBM)", p.name, model, "-", "s", published, seconds, "predicted",
                     f"weights over {run24['tp']} sockets' DDR-to-HBM copies at {p.dev('ddr_to_hbm') / 1e9:.0f} GB/s each"))
    run = targets["predicted_ratio"]
    model, tp, prompt, gen, gpu = (run[k] for k in ("model", "tp", "prompt", "gen", "gpu"))
    ratio = float(paper_value(run["claim"]))
    sn = predict_one("sn40l-node", model, 1, tp, prompt, gen)
    dgx = predict_one(gpu, model, 1, tp, prompt, gen, stack=run.get("gpu_stack"))  # absent: the DGX default
    rows.append(_row("[A] Table 2 (the measured run)", f"rdusim predict total, {gpu} over sn40l-node, TP{tp}, "
                     f"{prompt} in, {gen} out", "sn40l-node", model, f"{sn['stack']} / {dgx['stack']}", "x", ratio,
                     dgx["total_ms"] / sn["total_ms"], "predicted",
                     f"the SN40L's default stack against the article's GPU stack: {sn['total_ms']:.1f} ms against "
                     f"{dgx['total_ms']:.1f} ms; not independent of the fits: "
                     "sambaflow-2024 keeps the per-request work that sambaflow-2023 fitted to this Table 2 cell, and "
                     "NeMo's H100 table, which the GPU stack is fitted to, holds this run"))
    return pd.DataFrame(rows, columns=list(COLUMNS))
