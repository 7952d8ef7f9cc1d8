"""The SN40L node's measured expert latencies, recovered from Table 2, and the runtime work they imply.

The article measures the SN40L node and estimates the DGXs from published latencies [A ref. 10]; its
Table 2 gives the ratio of the two. Each expert-only cell therefore determines one SN40L latency:

    SN40L latency = GPU latency / speedup

with the GPU latency read from NeMo's published table where it has the point (Llama-2-7B, TP8, BS 1,
128 in, 20 out) and taken from the GPU engine model where it does not (200 output tokens, which the
retrievable table lacks; that engine model is fitted to the table's H100 rows only). The A100 and
the H100 cell of one token count describe the same SN40L run, so they check each other.

The SN40L model predicts the node's kernel time; the measured latency also holds the runtime's work
around the kernels. Two constants model it, per model call and per generated token
(``runtime_call_us``, ``runtime_token_us`` under ``fitted:`` in ``rdusim/data/platforms/sn40l.yaml``),
fitted by non-negative least squares on relative error to the four recovered latencies: the 20-token
cells alone fix only the total at 20 tokens, the 200-token cells split it into per-call and per-token
work. ``python -m rdusim.report.sn40l_runtime --write`` refits and rewrites them.
"""
from __future__ import annotations

import argparse
import re

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from rdusim.core.loader import read_text
from rdusim.core.paths import PLATFORM_DIR
from rdusim.core.platforms import load_platform
from rdusim.report.validation import load_claims
from rdusim.scenarios.coe import (
    expert_latency_s,
    expert_source,
    expert_times_ms,
    load_profile,
    runtime_overheads_s,
)
from rdusim.scenarios.footprint import CoEDeployment

RDU = "sn40l-node"
CELLS = (  # (claim id, DGX, output tokens): Table 2's expert-only cells, batch 1
    ("table2_expert_bs1_20tok_a100", "dgx-a100", 20),
    ("table2_expert_bs1_20tok_h100", "dgx-h100", 20),
    ("table2_expert_bs1_200tok_a100", "dgx-a100", 200),
    ("table2_expert_bs1_200tok_h100", "dgx-h100", 200),
)
PLATFORM_FILE = PLATFORM_DIR / "sn40l.yaml"


def inferred_table(dep: CoEDeployment | None = None) -> pd.DataFrame:
    """``sn40l_inferred.csv``: each SN40L latency that Table 2 and the published GPU latencies determine,
    the arithmetic behind it, and the SN40L model's prediction beside it (kernels alone, and with the
    fitted runtime work)."""
    dep = dep or CoEDeployment.from_config()
    paper = {c["id"]: c["paper"] for c in load_claims()}
    prof = load_profile("paper")
    rdu = load_platform(RDU)
    call, token = runtime_overheads_s(rdu, prof)
    tp = min(dep.tensor_parallel, rdu.devices)
    rows = []
    for claim, gpu, gen in CELLS:
        gpu_s = expert_latency_s(gpu, dep, prof, gen, 1)[1]
        source = expert_source(gpu, dep, prof, gen, 1)
        inferred = gpu_s / paper[claim]
        kernels = expert_times_ms(RDU, dep.expert_model, tp, dep.prompt_tokens, gen, prof.execution(rdu), 1)[1] / 1e3
        with_runtime = kernels + call + gen * token
        rows.append({
            "cell": claim, "baseline": gpu, "gen": gen, "gpu_latency_ms": gpu_s * 1e3,
            "gpu_source": "published (NeMo, article ref. [10])" if source == "published" else "GPU engine model",
            "table2_speedup": paper[claim], "sn40l_inferred_ms": inferred * 1e3,
            "arithmetic": f"{gpu_s * 1e3:.1f} ms / {paper[claim]:g}",
            "sn40l_kernels_ms": kernels * 1e3, "sn40l_model_ms": with_runtime * 1e3,
            "model_rel_err": with_runtime / inferred - 1,
        })
    return pd.DataFrame(rows)


def fit_runtime(dep: CoEDeployment | None = None) -> tuple[float, float]:
    """``(per call s, per token s)``: the SN40L runtime's work that best explains the recovered latencies."""
    t = inferred_table(dep)
    measured = t.sn40l_inferred_ms.to_numpy() / 1e3
    kernels = t.sn40l_kernels_ms.to_numpy() / 1e3
    a = np.column_stack([np.ones(len(t)), t.gen.to_numpy(float)]) / measured[:, None]
    x = lsq_linear(a, (measured - kernels) / measured, bounds=(0.0, np.inf)).x
    return float(x[0]), float(x[1])


def platform_yaml(call_s: float, token_s: float) -> str:
    """``sn40l.yaml`` with the fitted block's two values replaced."""
    text = read_text(PLATFORM_FILE, "platform sn40l")
    for key, value in (("runtime_call_us", call_s * 1e6), ("runtime_token_us", token_s * 1e6)):
        text = re.sub(rf"(\n    {key}: )[0-9.eE+-]+", lambda m: f"{m[1]}{value:.1f}", text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refit and rewrite the fitted block of sn40l.yaml")
    args = parser.parse_args(argv)
    call, token = fit_runtime()
    print(f"runtime_call_us: {call * 1e6:.1f}  runtime_token_us: {token * 1e6:.1f}")
    if args.write:
        PLATFORM_FILE.write_text(platform_yaml(call, token))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
