"""Fit the GPU model's free constants to measurements, and check it on data it was not fitted to.

Calibration data: the H100 SXM run in ``baselines/data/measured/h100_sxm.json``. Each measured time
is predicted from the operator graph of the program that was timed: a Llama-family decoder with
fused scaled-dot-product attention (``attention_impl="sdpa"``), prefill of the prompt in eager mode,
decode steps in eager mode or replayed from a CUDA graph, with attention over the whole static cache
(prompt + 200 positions) as the measured program does. Four constants are fitted by least squares
on log(predicted / measured) with scipy: ``bw_efficiency``, ``gemm_efficiency``, ``kernel_floor``,
``eager_host``. Generalisation is checked three ways: fit on Llama-2-7B only and predict Mistral-7B;
fit on batch 1 only and predict batch 8; predict TensorRT-LLM's A100 first-token latencies (an
engine and a GPU never used for fitting) in the ``fused`` mode.

``python -m baselines.calibration --write`` refits and rewrites the ``fitted`` block of
``baselines/data/gpu_constants.yaml``.
"""
from __future__ import annotations

import argparse
import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares

from benchmarks.decoder import workload_graph
from benchmarks.models import get_model

from .gpu import CONSTANTS_FILE, GpuConstants, GpuDevice, GpuKernels, lower, total_time

DATA = Path(__file__).parent / "data"
MEASURED_FILE = DATA / "measured" / "h100_sxm.json"
TRTLLM_FILE = DATA / "trtllm_ttft.yaml"
FITTED = ("bw_efficiency", "gemm_efficiency", "kernel_floor", "eager_host")
BOUNDS = ([0.2, 0.2, 0.2e-6, 1e-6], [1.0, 1.0, 30e-6, 200e-6])
STATIC_CACHE_EXTRA = 200  # the measured program's KV cache holds prompt + 200 positions


def measured_points(path: Path = MEASURED_FILE) -> pd.DataFrame:
    """One row per measured model time: model, mode, phase, batch, prompt, gen, measured_ms."""
    data = json.loads(Path(path).read_text())
    rows = []
    for model in ("llama2-7b", "mistral-7b"):
        block = data.get(model, {})
        prompt = int(block.get("prompt", 128))
        for key, value in block.items():
            if m := re.fullmatch(r"prefill_ms_bs(\d+)", key):
                rows.append((key, model, "eager", "prefill", int(m[1]), prompt, 0, value))
            elif m := re.fullmatch(r"prefill_ms_bs(\d+)_seq(\d+)", key):
                rows.append((key, model, "eager", "prefill", int(m[1]), int(m[2]), 0, value))
            elif m := re.fullmatch(r"decode_(eager|graph)_ms_bs(\d+)_gen(\d+)", key):
                mode = "eager" if m[1] == "eager" else "cuda-graph"
                rows.append((key, model, mode, "decode", int(m[2]), prompt, int(m[3]), value))
    frame = pd.DataFrame(rows, columns=["point", "model", "mode", "phase", "batch", "prompt", "gen", "measured_ms"])
    frame["platform"] = "h100-sxm"
    frame["tp"] = 1
    frame["source"] = "H100 SXM measurement"
    return frame


def trtllm_points(path: Path = TRTLLM_FILE) -> pd.DataFrame:
    """TensorRT-LLM first-token latencies (validation only)."""
    rows = yaml.safe_load(Path(path).read_text())
    frame = pd.DataFrame(rows).rename(columns={"ttft_ms": "measured_ms"})
    frame["point"] = [f"trtllm_{r.model}_tp{r.tp}_p{r.prompt}" for r in frame.itertuples()]
    frame["mode"], frame["phase"], frame["batch"], frame["gen"] = "fused", "prefill", 1, 0
    frame["source"] = "TensorRT-LLM v0.5 (A100, FP16)"
    return frame


@lru_cache(maxsize=None)
def _kernels(model: str, mode: str, phase: str, batch: int, prompt: int, tp: int) -> GpuKernels:
    seq = prompt + STATIC_CACHE_EXTRA if phase == "decode" else prompt
    return lower(workload_graph(get_model(model), phase, batch, seq, tp, attention_impl="sdpa"), mode)


def predict_ms(points: pd.DataFrame, const: GpuConstants) -> np.ndarray:
    """Model time (ms) of each point: prefill time, or gen x one decode step."""
    out = np.empty(len(points))
    for i, p in enumerate(points.itertuples()):
        dev = GpuDevice.from_platform(p.platform, const)
        k = _kernels(p.model, p.mode, p.phase, int(p.batch), int(p.prompt), int(p.tp))
        steps = int(p.gen) if p.phase == "decode" else 1
        out[i] = steps * total_time(k, dev, const) * 1e3
    return out


def fit(points: pd.DataFrame, start: GpuConstants | None = None) -> GpuConstants:
    """Least-squares fit of the four free constants to ``points`` (log residuals)."""
    start = start or GpuConstants.load()
    measured = points["measured_ms"].to_numpy(float)

    def residuals(x):
        const = start.with_fitted(dict(zip(FITTED, x)))
        return np.log(predict_ms(points, const) / measured)

    x0 = np.clip([getattr(start, f) for f in FITTED], BOUNDS[0], BOUNDS[1])
    result = least_squares(residuals, x0, bounds=BOUNDS, x_scale=[0.1, 0.1, 1e-6, 1e-5], diff_step=1e-3)
    return start.with_fitted(dict(zip(FITTED, result.x)))


def calibration_table(const: GpuConstants | None = None) -> pd.DataFrame:
    """Measured vs predicted for every calibration and validation point, with the generalisation splits.

    Columns: point, source, platform, model, mode, phase, batch, prompt, gen, tp, measured_ms,
    predicted_ms, rel_err, split. ``split`` is ``fit`` (full fit, all H100 points), or a held-out
    check: ``holdout_mistral`` (fit on Llama-2-7B, predict Mistral-7B), ``holdout_bs8`` (fit on
    batch 1, predict batch 8), ``unseen_trtllm`` (TensorRT-LLM on A100, never fitted).
    """
    h100 = measured_points()
    full = const or fit(h100)
    parts = []
    t = h100.copy()
    t["predicted_ms"], t["split"] = predict_ms(t, full), "fit"
    parts.append(t)
    llama_only = fit(h100[h100.model == "llama2-7b"], full)
    t = h100[h100.model == "mistral-7b"].copy()
    t["predicted_ms"], t["split"] = predict_ms(t, llama_only), "holdout_mistral"
    parts.append(t)
    bs1_only = fit(h100[h100.batch == 1], full)
    t = h100[h100.batch != 1].copy()
    t["predicted_ms"], t["split"] = predict_ms(t, bs1_only), "holdout_bs8"
    parts.append(t)
    trt = trtllm_points()
    trt["predicted_ms"], trt["split"] = predict_ms(trt, full), "unseen_trtllm"
    parts.append(trt)
    table = pd.concat(parts, ignore_index=True)
    table["rel_err"] = table["predicted_ms"] / table["measured_ms"] - 1
    cols = ["point", "source", "platform", "model", "mode", "phase", "batch", "prompt", "gen", "tp",
            "measured_ms", "predicted_ms", "rel_err", "split"]
    return table[cols]


def constants_yaml(const: GpuConstants, table: pd.DataFrame) -> str:
    """The constants file with the fitted block replaced and the fit's residuals in comments."""
    text = CONSTANTS_FILE.read_text()
    fit_rows = table[table.split == "fit"]
    values = {"bw_efficiency_fraction": const.bw_efficiency, "gemm_efficiency_fraction": const.gemm_efficiency,
              "kernel_floor_us": const.kernel_floor * 1e6, "eager_host_us": const.eager_host * 1e6}
    for key, value in values.items():
        text = re.sub(rf"(\n  {key}: )[0-9.eE+-]+", lambda m: f"{m[1]}{value:.4f}", text)
    summary = (f"# last fit: {len(fit_rows)} H100 points, median |error| {fit_rows.rel_err.abs().median():.1%}, "
               f"max |error| {fit_rows.rel_err.abs().max():.1%}")
    text = re.sub(r"\n# last fit:[^\n]*", "", text)
    return text.replace("\nfitted:\n", f"\n{summary}\nfitted:\n", 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refit and rewrite baselines/data/gpu_constants.yaml")
    parser.add_argument("--constants-out", help="write the fitted constants file here instead")
    parser.add_argument("--table-out", help="write the measured-vs-predicted table (CSV) here")
    args = parser.parse_args(argv)
    const = fit(measured_points())
    table = calibration_table(const)
    text = constants_yaml(const, table)
    if args.write:
        CONSTANTS_FILE.write_text(text)
    if args.constants_out:
        Path(args.constants_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.constants_out).write_text(text)
    if args.table_out:
        Path(args.table_out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.table_out, index=False)
    print(table.groupby("split")["rel_err"].agg(lambda e: f"median {e.abs().median():.1%}, max {e.abs().max():.1%}").to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
