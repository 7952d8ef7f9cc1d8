"""The GPU model against 834 independent latency measurements, and the serving stacks fitted to them.

Data: ``baselines/data/published/validation/measured_latency.csv`` (Argonne LLM-Inference-Bench on
A100-SXM4-40GB, Splitwise's DGX A100/H100 profiles, TensorRT-LLM's documented A100 first tokens; one row
per measured quantity). Each row is predicted by :func:`rdusim.scenarios.predict.predict` on its platform
(Argonne: ``a100-sxm-40gb`` at one GPU, the 4-GPU Polaris node ``a100-40gb-x4`` above; the others the
row's own) with the stack that ran it (:data:`STACK_OF`). Metrics: ``ttft_ms`` (the prompt pass),
``decode_ms_per_token`` (one decode step of the batch), ``total_ms`` = TTFT + (G - 1) decode steps (the
first token comes from the prompt pass; Splitwise's definition, and Argonne's G = L tokens with
``ignore_eos``).

Fit and hold-out: the configurations (source, GPU, model, TP, batch, prompt, output) of each stack are
sorted and every other one is fitted (all its metrics), the rest only predicted (``split`` column:
``fitted`` / ``predicted``). What is fitted is each stack's runtime terms whose basis in its file says
``fitted:`` (:func:`fit_stack`): linear terms by non-negative least squares on relative error, a kernel
launch time (``launch_us``) by a grid around them. Kernel physics (GEMM rates, all-reduce bandwidth) come
from the kernel profiles, not from these rows. ``python -m rdusim.report.gpu_validation --write`` refits
and rewrites the fitted values in ``rdusim/data/stacks/*.yaml``. Cross-validation
(:func:`cross_validation`): the stack that has both GPUs (Splitwise's) fitted on one and predicting the
other, both ways.
"""
from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from benchmarks.decoder import allreduces_per_pass
from benchmarks.models import get_model
from rdusim.core.paths import PACKAGE_DIR
from rdusim.core.stacks import Stack, load_stack
from rdusim.core.tables import read_table
from rdusim.core.yamltext import replace_number
from rdusim.scenarios.predict import predict

DATA_FILE = PACKAGE_DIR.parent / "baselines" / "data" / "published" / "validation" / "measured_latency.csv"
# (source, stack as the source names it) -> the rdusim stack that models it
STACK_OF = {("argonne", "trtllm"): "trtllm", ("argonne", "vllm"): "vllm", ("argonne", "deepspeed-mii"): "deepspeed-mii",
            ("splitwise", "vllm"): "vllm-eager", ("trtllm-static-v0.5-v0.9", "trtllm"): "trtllm"}
CONFIG = ["source", "hardware", "model", "tp", "batch", "prompt", "gen"]
LINEAR = ("request", "prompt_token", "step", "sequence_step", "tp_step", "collective")
LAUNCH_GRID_US = np.arange(0.0, 80.01, 1.0)
SUMMARY_KEYS = ["source", "hardware", "stack", "metric", "split"]


def measurements(path: str | Path = DATA_FILE) -> pd.DataFrame:
    """The measurements with the rdusim platform, stack and fit/hold-out split of each row."""
    d = read_table(path, f"measurements {path}")
    d = d.rename(columns={"stack": "source_stack", "value": "measured_ms"})
    d["stack"] = [STACK_OF[(s, k)] for s, k in zip(d.source, d.source_stack)]
    argonne = d.source == "argonne"
    d.loc[argonne, "platform"] = np.where(d.loc[argonne, "tp"] == 1, "a100-sxm-40gb", "a100-40gb-x4")
    d["split"] = "predicted"
    for _, rows in d.groupby("stack", sort=True):
        configs = rows[CONFIG].drop_duplicates().sort_values(CONFIG).reset_index(drop=True)
        fit = configs.iloc[::2]
        keys = set(map(tuple, fit.to_numpy().tolist()))
        mask = [tuple(r) in keys for r in rows[CONFIG].to_numpy().tolist()]
        d.loc[rows.index[mask], "split"] = "fitted"
    return d


def _features(d: pd.DataFrame) -> np.ndarray:
    """Rows x :data:`LINEAR`: how many times each linear runtime term enters a row's measured quantity."""
    b, length, g, tp = (d[c].to_numpy(float) for c in ("batch", "prompt", "gen", "tp"))
    ar = np.array([allreduces_per_pass(get_model(m), int(t)) for m, t in zip(d.model, d.tp)], dtype=float)
    ttft = np.column_stack([np.ones_like(b), b * length, np.ones_like(b), b, tp - 1, ar])
    step = np.column_stack([np.zeros_like(b), np.zeros_like(b), np.ones_like(b), b, tp - 1, ar])
    metric = d.metric.to_numpy()
    out = np.where((metric == "ttft_ms")[:, None], ttft, 0.0)
    out = np.where((metric == "decode_ms_per_token")[:, None], step, out)
    return np.where((metric == "total_ms")[:, None], ttft + (g - 1)[:, None] * step, out)


def _stack_file(stack: Stack, values: dict[str, float], where: Path, kernel: dict[str, float] | None = None) -> str:
    """A stack file with ``values`` (SI) in place of the stack's runtime terms and ``kernel`` in place of its
    kernel terms (SI names, fractions), for one prediction pass."""
    terms = {**{t: getattr(stack, t) for t in LINEAR + ("launch",)}, **values}
    lines = [f"name: {stack.name}", "applies_to: [gpu]", f"execution: {stack.execution}", "runtime:"]
    for key, value in terms.items():
        if value:
            lines.append(f"  {key}_us: {{value: {float(value) * 1e6!r}, meaning: fit, basis: 'fitted: trial'}}")
    kterms = {**dict(stack.kernel), **(kernel or {})}
    if kterms:
        lines.append("kernel:")
        lines += [f"  {key}_fraction: {{value: {float(value)!r}, meaning: fit, basis: 'fitted: trial'}}"
                  for key, value in sorted(kterms.items())]
    text = "\n".join(lines) + "\n"
    path = where / f"{stack.name}-{hashlib.sha1(text.encode()).hexdigest()[:12]}.yaml"
    path.write_text(text)
    return str(path)


def _predict_ms(d: pd.DataFrame, stack: str) -> np.ndarray:
    """The model's value (ms) of each row's metric with stack ``stack`` (a name or a file)."""
    frame = d[["platform", "model", "batch", "tp", "prompt", "gen"]].copy()
    frame["stack"] = stack
    out = predict(frame)
    ttft, dec = out.ttft_ms.to_numpy(), out.decode_ms_per_token.to_numpy()
    total = ttft + (d.gen.to_numpy() - 1) * dec
    metric = d.metric.to_numpy()
    return np.where(metric == "ttft_ms", ttft, np.where(metric == "decode_ms_per_token", dec, total))


def fitted_terms(stack: Stack) -> list[str]:
    """The runtime terms (SI names) of ``stack`` whose basis says ``fitted:``."""
    return [key[:-3] for key, basis in stack.basis if basis.startswith("fitted:") and key[:-3] in LINEAR + ("launch",)]


def fitted_kernel_terms(stack: Stack) -> list[str]:
    """The kernel terms (SI names, fractions) of ``stack`` whose basis says ``fitted:``."""
    return [key[:-9] for key, basis in stack.basis if basis.startswith("fitted:") and key.endswith("_fraction")]


def fit_stack(name: str, rows: pd.DataFrame, kernel: dict[str, float] | None = None) -> dict[str, float]:
    """Fitted values (SI) of ``name``'s ``fitted:`` runtime terms on ``rows``: the linear terms by
    non-negative least squares on relative error over the kernel time without them; ``launch`` (if
    fitted) by the grid :data:`LAUNCH_GRID_US`, keeping the value whose linear fit has the smallest
    sum of squared relative errors. ``kernel``: the stack's kernel terms to fit with (default its own)."""
    stack = load_stack(name)
    terms = fitted_terms(stack)
    linear = [t for t in terms if t in LINEAR]
    cols = [LINEAR.index(t) for t in linear]
    feats = _features(rows)[:, cols] * 1e3  # seconds of a term -> ms of the row
    measured = rows.measured_ms.to_numpy(float)
    zero = dict.fromkeys(terms, 0.0)
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        for launch in (LAUNCH_GRID_US if "launch" in terms else [None]):
            values = dict(zero)
            if launch is not None:
                values["launch"] = launch * 1e-6
            base = _predict_ms(rows, _stack_file(stack, values, Path(tmp), kernel))
            res = lsq_linear(feats / measured[:, None], 1 - base / measured, bounds=(0.0, np.inf))
            cost = float(np.sum(((base + feats @ res.x) / measured - 1) ** 2))
            if best is None or cost < best[0]:
                best = (cost, {**values, **dict(zip(linear, map(float, res.x)))})
    return best[1]


def fit_all(d: pd.DataFrame | None = None, kernel: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Fitted terms of every stack with ``fitted:`` terms, each on its own ``fitted`` rows (with the kernel
    terms ``kernel`` in place of those its file fits, when given)."""
    d = measurements() if d is None else d
    out = {}
    for name, rows in d.groupby("stack", sort=True):
        stack = load_stack(name)
        if fitted_terms(stack):
            own = {k: v for k, v in (kernel or {}).items() if k in fitted_kernel_terms(stack)}
            out[name] = fit_stack(name, rows[rows.split == "fitted"], own)
    return out


# The grid of a fitted kernel fraction (coarse, then 0.01 steps around the best coarse value).
KERNEL_GRID = np.round(np.arange(0.05, 0.501, 0.05), 2)


def _kernel_cost(d: pd.DataFrame, kernel: dict[str, float]) -> float:
    """Sum of squared relative errors on the ``fitted`` rows of the stacks that fit ``kernel``'s terms, with
    their runtime terms refitted."""
    names = [n for n in sorted(d["stack"].unique()) if set(kernel) & set(fitted_kernel_terms(load_stack(n)))]
    runtime = fit_all(d[d["stack"].isin(names)], kernel)
    cost = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows = d[(d["stack"] == name) & (d.split == "fitted")]
            path = _stack_file(load_stack(name), runtime[name], Path(tmp), kernel)
            cost += float(np.sum((_predict_ms(rows, path) / rows.measured_ms.to_numpy(float) - 1) ** 2))
    return cost


def fit_kernel_terms(d: pd.DataFrame | None = None) -> dict[str, float]:
    """The kernel fractions that stacks' files say are ``fitted:`` (one value shared by every stack that
    names the term: a property of the engines' kernel class, not of one engine), on the ``fitted`` rows of
    all those stacks together: the value of :data:`KERNEL_GRID`, then of 0.01 steps around it, whose stacks,
    each with its runtime terms refitted, have the smallest sum of squared relative errors."""
    d = measurements() if d is None else d
    terms = sorted({t for n in d["stack"].unique() for t in fitted_kernel_terms(load_stack(n))})
    out: dict[str, float] = {}
    for term in terms:  # one term at a time, the others at their current values
        def cost(v):
            return _kernel_cost(d, {**out, term: float(v)})
        coarse = min(KERNEL_GRID, key=cost)
        fine = np.round(np.arange(max(0.01, coarse - 0.04), min(1.0, coarse + 0.04) + 1e-9, 0.01), 2)
        out[term] = float(min(fine, key=cost))
    return out


def validation_table(d: pd.DataFrame | None = None, stacks: dict[str, str] | None = None) -> pd.DataFrame:
    """Every measurement with the prediction (packaged stacks, or files ``stacks[name]``), error and split."""
    d = measurements() if d is None else d.copy()
    d["predicted_ms"] = np.nan
    for name, rows in d.groupby("stack", sort=False):
        d.loc[rows.index, "predicted_ms"] = _predict_ms(rows, (stacks or {}).get(name, name))
    d["error"] = d.predicted_ms / d.measured_ms - 1
    cols = ["id", "source", "hardware", "source_stack", "stack", "platform", "model", "tp", "batch", "prompt", "gen",
            "metric", "measured_ms", "predicted_ms", "error", "split"]
    return d[cols]


def summarise(table: pd.DataFrame, keys=None) -> pd.DataFrame:
    """n, median signed and absolute error and 90th percentile of |error| per group (``keys``), plus the
    ``all`` rows per split."""
    keys = keys or SUMMARY_KEYS
    t = table.assign(abs_error=table.error.abs())

    def agg(g):
        return pd.Series({"n": len(g), "median_error": g.error.median(), "median_abs_error": g.abs_error.median(),
                          "p90_abs_error": g.abs_error.quantile(0.9)})
    parts = [t.groupby(keys, sort=True).apply(agg, include_groups=False).reset_index()]
    for split, g in [("all", t)] + list(t.groupby("split")):
        row = agg(g).to_dict()
        row.update({k: "all" for k in keys})
        row["split"] = split
        parts.append(pd.DataFrame([row]))
    out = pd.concat(parts, ignore_index=True)
    out["n"] = out["n"].astype(int)
    return out


def cross_validation(d: pd.DataFrame | None = None) -> pd.DataFrame:
    """The stacks measured on both GPUs, fitted on all rows of one GPU and predicting the other's."""
    d = measurements() if d is None else d
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in d.groupby("stack", sort=True):
            gpus = sorted(rows.hardware.unique())
            if len(gpus) < 2 or not fitted_terms(load_stack(name)):
                continue
            for fit_gpu in gpus:
                values = fit_stack(name, rows[rows.hardware == fit_gpu])
                path = _stack_file(load_stack(name), values, Path(tmp))
                for gpu in gpus:
                    part = rows[rows.hardware == gpu]
                    err = _predict_ms(part, path) / part.measured_ms.to_numpy() - 1
                    parts.append({"stack": name, "fitted_on": fit_gpu, "predicted": gpu,
                                  "basis": "fitted" if gpu == fit_gpu else "predicted", "n": len(part),
                                  "median_error": float(np.median(err)), "median_abs_error": float(np.median(np.abs(err))),
                                  "p90_abs_error": float(np.quantile(np.abs(err), 0.9)),
                                  **{f"{k}_us": v * 1e6 for k, v in values.items()}})
    return pd.DataFrame(parts)


def rewrite_stack(name: str, values: dict[str, float], kernel: dict[str, float] | None = None) -> str:
    """The text of stack ``name``'s file with its fitted values replaced (runtime terms in microseconds,
    4 decimals; the fitted kernel fractions of ``kernel``, 2 decimals)."""
    stack = load_stack(name)
    text = Path(stack.path).read_text()
    for key, value in values.items():
        text = replace_number(text, rf"\n  {key}_us:\n    value: ", f"{value * 1e6:.4f}", f"{stack.path}: {key}_us")
    for key in fitted_kernel_terms(stack):
        if key in (kernel or {}):
            text = replace_number(text, rf"\n  {key}_fraction:\n    value: ", f"{kernel[key]:.2f}",
                                  f"{stack.path}: {key}_fraction")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refit and rewrite the fitted stack terms")
    parser.add_argument("--table-out")
    parser.add_argument("--summary-out")
    parser.add_argument("--crossval-out")
    args = parser.parse_args(argv)
    d = measurements()
    if args.write:
        kernel = fit_kernel_terms(d)
        for name, values in fit_all(d, kernel).items():
            Path(load_stack(name).path).write_text(rewrite_stack(name, values, kernel))
        load_stack.cache_clear()
    table = validation_table(d)
    summary = summarise(table)
    for path, frame in ((args.table_out, table), (args.summary_out, summary),
                        (args.crossval_out, cross_validation(d) if args.crossval_out else None)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
