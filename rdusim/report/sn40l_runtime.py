"""The SN40L runtime's work, fitted to the public SN40L numbers: the two `sambaflow` stacks.

**sambaflow-2023** (the article's node). The article measures the SN40L node and estimates the DGXs
from published latencies [A ref. 10]; its Table 2 gives the ratio of the two. Each expert-only cell
therefore determines one SN40L latency:

    SN40L latency = GPU latency / speedup

with the GPU latency read from NeMo's published table where it has the point (Llama-2-7B, TP8, BS 1,
128 in, 20 out) and taken from the GPU engine model where it does not (200 output tokens, which the
retrievable table lacks; that engine model is fitted to the table's H100 rows only). The A100 and the
H100 cell of one token count describe the same SN40L run, so they check each other. The SN40L model
gives the kernel time; the stack's two terms, per request (``request_us``) and per pass (``step_us``:
the prompt pass and every decode step, as ``rdusim predict`` adds them), are fitted by non-negative
least squares on relative error to the four recovered latencies: the 20-token cells fix the total at
20 tokens, the 200-token cells split it.

**sambaflow-2024** (SambaNova's 2024 rates, the default). [P] Table IV gives Llama-3.1-8B at 1042 output
tokens/s per user on the 16-socket system (``sn40l-16``, TP16, BF16): a decode step of 0.96 ms, kernels
and runtime together, at batch 1 (taken with a 1000-token prompt and 500 tokens out). Issue 20 states
that batch-16 runs of an 8-socket system take 2.5x the batch-1 time: the stack's per-sequence work
(``sequence_step_us``) is set so that the median of that ratio over the issue's models and lengths
(:func:`batch_grid`) is 2.5, and its per-pass work (``step_us``) so that the 8B rate holds with it. No
2024 time to first token is published: ``request_us`` is sambaflow-2023's.

The published numbers the fit targets are read from ``rdusim/data/sn40l_fit_targets.yaml`` and
``public_checks.yaml``. ``python -m rdusim.report.sn40l_runtime --write`` refits and rewrites the values in both stack files.
"""
from __future__ import annotations

import argparse
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import brentq, lsq_linear

from rdusim.core.errors import ConfigError
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.paths import DATA_DIR
from rdusim.core.platforms import load_platform
from rdusim.core.stacks import STACK_DIR, load_stack
from rdusim.core.yamltext import replace_number
from rdusim.report.speculative import load_checks
from rdusim.report.validation import load_claims
from rdusim.scenarios.coe import expert_latency_s, expert_source, expert_times_ms, load_profile
from rdusim.scenarios.footprint import CoEDeployment
from rdusim.scenarios.predict import predict

RDU = "sn40l-node"
STACK_2023, STACK_2024 = "sambaflow-2023", "sambaflow-2024"
CELLS = (  # (claim id, DGX, output tokens): Table 2's expert-only cells, batch 1
    ("table2_expert_bs1_20tok_a100", "dgx-a100", 20),
    ("table2_expert_bs1_20tok_h100", "dgx-h100", 20),
    ("table2_expert_bs1_200tok_a100", "dgx-a100", 200),
    ("table2_expert_bs1_200tok_h100", "dgx-h100", 200),
)
TARGETS_FILE = DATA_DIR / "sn40l_fit_targets.yaml"


@lru_cache(maxsize=1)
def fit_targets() -> dict:
    """The published SN40L statements of ``rdusim/data/sn40l_fit_targets.yaml`` (the fit's targets and
    the public checks beside them), checked for the keys this module and :mod:`sn40l_public` read;
    read once, on first use."""
    return load_fit_targets()


def load_fit_targets() -> dict:
    """:func:`fit_targets` read from the file now (not cached)."""
    targets = mapping("SN40L fit targets", load_yaml(TARGETS_FILE, "SN40L fit targets"),
                      "a mapping with rate_check, batch_ratio, switch_time and predicted_ratio")
    for key in ("rate_check", "batch_ratio", "switch_time", "predicted_ratio"):
        if key not in targets:
            raise ConfigError(f"sn40l_fit_targets.{key}", None, "present (see the file's comments)")
    return targets


@lru_cache(maxsize=1)
def rate_2024() -> dict:
    """[P] Table IV / [B]: Llama-3.1-8B on 16 sockets, output tokens/s per user (a decode step's rate), as
    public_checks.yaml's row named by ``rate_check`` holds it: the request's columns and ``tokens_per_s``."""
    check_id = fit_targets()["rate_check"]
    rows = [r for r in load_checks() if r["id"] == check_id]
    if len(rows) != 1:
        raise ConfigError("sn40l_fit_targets.rate_check", check_id, "the id of one public_checks.yaml row")
    return {**rows[0]["request"], "tokens_per_s": float(rows[0]["published"])}


def batch_ratio() -> float:
    """Issue 20: batch-16 runs of an 8-socket system take this many times the batch-1 time."""
    return float(fit_targets()["batch_ratio"]["ratio"])


@lru_cache(maxsize=1)
def batch_grid() -> dict:
    """The grid the median batch ratio (:func:`batch_ratio`) is taken over: platform, tp, models, lengths
    (prompt and output) and the two batches."""
    g = fit_targets()["batch_ratio"]
    return {"platform": g["platform"], "tp": int(g["tp"]), "models": tuple(g["models"]),
            "lengths": tuple(g["lengths_tokens"]), "batches": tuple(g["batches"])}


def inferred_table(dep: CoEDeployment | None = None) -> pd.DataFrame:
    """``sn40l_inferred.csv``: each SN40L latency that Table 2 and the published GPU latencies determine,
    the arithmetic behind it, and the SN40L model's prediction beside it (kernels alone, and in the
    sambaflow-2023 stack)."""
    dep = dep or CoEDeployment.from_config()
    paper = {c["id"]: c["paper"] for c in load_claims()}
    prof = load_profile("paper")
    rdu = load_platform(RDU)
    tp = min(dep.tensor_parallel, rdu.devices)
    rows = []
    for claim, gpu, gen in CELLS:
        gpu_s = expert_latency_s(gpu, dep, prof, gen, 1)[1]
        source = expert_source(gpu, dep, prof, gen, 1)
        inferred = gpu_s / paper[claim]
        kernels = expert_times_ms(RDU, dep.expert_model, tp, dep.prompt_tokens, gen, prof.execution(rdu), 1, "kernels")[1] / 1e3
        with_runtime = expert_times_ms(RDU, dep.expert_model, tp, dep.prompt_tokens, gen, prof.execution(rdu), 1,
                                       prof.rdu_stack)[1] / 1e3
        rows.append({
            "cell": claim, "baseline": gpu, "gen": gen, "gpu_latency_ms": gpu_s * 1e3,
            "gpu_source": "published (NeMo, article ref. [10])" if source == "published" else "GPU engine model",
            "table2_speedup": paper[claim], "sn40l_inferred_ms": inferred * 1e3,
            "arithmetic": f"{gpu_s * 1e3:.1f} ms / {paper[claim]:g}",
            "sn40l_kernels_ms": kernels * 1e3, "sn40l_model_ms": with_runtime * 1e3, "stack": prof.rdu_stack,
            "model_rel_err": with_runtime / inferred - 1,
        })
    return pd.DataFrame(rows)


def fit_2023(dep: CoEDeployment | None = None) -> tuple[float, float]:
    """``(request s, per pass s)`` of sambaflow-2023: the work that best explains the recovered latencies
    (an expert call of G tokens runs G + 1 passes: the prompt pass and G decode steps)."""
    t = inferred_table(dep)
    measured = t.sn40l_inferred_ms.to_numpy() / 1e3
    kernels = t.sn40l_kernels_ms.to_numpy() / 1e3
    a = np.column_stack([np.ones(len(t)), t.gen.to_numpy(float) + 1]) / measured[:, None]
    x = lsq_linear(a, (measured - kernels) / measured, bounds=(0.0, np.inf)).x
    return float(x[0]), float(x[1])


def _kernels(rows: list[dict]) -> pd.DataFrame:
    return predict(pd.DataFrame(rows).assign(stack="kernels"))


def kernel_step_2024_s() -> float:
    """Kernel time (s) of one decode step of the 2024 rate's run (:func:`rate_2024`) on ``sn40l-16``."""
    r = {k: v for k, v in rate_2024().items() if k != "tokens_per_s"}
    return float(_kernels([r]).decode_ms_per_token.iloc[0]) / 1e3


def batch_grid_kernels() -> pd.DataFrame:
    """Kernel times of the batch-ratio grid (:func:`batch_grid`), one row per model, lengths and batch."""
    g = batch_grid()
    rows = [{"platform": g["platform"], "model": m, "tp": g["tp"], "prompt": p, "gen": n, "batch": b}
            for m in g["models"] for p in g["lengths"] for n in g["lengths"] for b in g["batches"]]
    return _kernels(rows)


def batch_ratios(grid: pd.DataFrame, request: float, per_pass_b1: float, sequence_step: float) -> pd.Series:
    """Batch-16 over batch-1 request time on the grid when a pass costs ``per_pass_b1`` at batch 1 and
    ``sequence_step`` more per further sequence (seconds); kernel times from :func:`batch_grid_kernels`."""
    total = (grid.total_ms / 1e3 + request
             + (grid.gen + 1) * (per_pass_b1 + sequence_step * (grid.batch - 1)))
    keyed = grid.assign(total=total).set_index(["model", "prompt", "gen", "batch"]).total.unstack("batch")
    lo, hi = batch_grid()["batches"]
    return keyed[hi] / keyed[lo]


def fit_2024(request: float) -> tuple[float, float]:
    """``(per pass s, per sequence per pass s)`` of sambaflow-2024: the batch-1 pass that meets the 8B rate
    on sn40l-16, split so that the median batch ratio on :func:`batch_grid` is :func:`batch_ratio`."""
    per_pass_b1 = 1.0 / rate_2024()["tokens_per_s"] - kernel_step_2024_s()
    if per_pass_b1 < 0:
        raise RuntimeError("sn40l-16's kernels alone are slower than the published 8B rate")
    grid = batch_grid_kernels()
    gap = lambda s: float(batch_ratios(grid, request, per_pass_b1, s).median()) - batch_ratio()  # noqa: E731
    sequence_step = 0.0 if gap(0.0) >= 0 else brentq(gap, 0.0, 0.1, xtol=1e-9)
    sequence_step = min(sequence_step, per_pass_b1)  # the per-pass work at batch 1 holds the first sequence's
    return per_pass_b1 - sequence_step, sequence_step


def set_terms(text: str, values: dict[str, float]) -> str:
    """A stack file's text with the ``value:`` of each runtime term in ``values`` (us) replaced."""
    for key, value in values.items():
        text = replace_number(text, rf"\n  {key}:\n    value: ", f"{value:.1f}", f"stack file: {key}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refit and rewrite the values in both stack files")
    args = parser.parse_args(argv)
    request, step = fit_2023()
    step_2024, sequence = fit_2024(request)
    fits = {STACK_2023: {"request_us": request * 1e6, "step_us": step * 1e6},
            STACK_2024: {"request_us": request * 1e6, "step_us": step_2024 * 1e6, "sequence_step_us": sequence * 1e6}}
    for name, values in fits.items():
        print(name, "  ".join(f"{k}: {v:.1f}" for k, v in values.items()))
        if args.write:
            path = STACK_DIR / f"{name}.yaml"
            path.write_text(set_terms(path.read_text(), values))
    if args.write:
        load_stack.cache_clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
