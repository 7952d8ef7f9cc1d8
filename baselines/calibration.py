"""Fit the GPU model's free constants to measurements, and check it on data it was not fitted to.

Calibration data: the H100 SXM run in ``baselines/data/measured/h100_sxm.json``. Each measured time
is predicted from the operator graph of the program that was timed: a Llama-family decoder with
fused scaled-dot-product attention (``attention_impl="sdpa"``), prefill of the prompt in eager mode,
decode steps in eager mode or replayed from a CUDA graph, with attention over the whole static cache
(prompt + 200 positions) as the measured program does. Four constants are fitted with scipy by robust
least squares (Cauchy loss, scale 10%) on log(predicted / measured): ``stream_efficiency``,
``gemm_efficiency``, ``kernel_ramp``, ``eager_host``. The robust loss keeps the eager 20-step runs,
whose per-step times disagree with the 200-step runs of the same configuration by up to 50%, from
pulling the fit. The engine (``fused`` mode) constants are then fitted: ``engine_stream_efficiency``
(how fast an optimised engine's GEMV kernels stream) to LMDeploy's published A100 batch-1 decode
latencies (``lmdeploy_a100.yaml``, taken as kernel time: TurboMind's runtime is C++), then the runtime
work of NeMo's TensorRT-LLM stack per request, per step and per sequence-step, and the all-reduce
latency (``engine_request``, ``engine_step``, ``engine_sequence_step``, ``allreduce_latency``) to the
H100 rows of NVIDIA's NeMo Llama-2 table (the article's GPU source [10], TP 1 to 8, batch 1 to 8), by
non-negative linear least squares on relative error.

Generalisation is checked on data never fitted: fit on Llama-2-7B only and predict Mistral-7B; fit on
batch 1 only and predict batch 8; LMDeploy at batch 16 to 64; TensorRT-LLM's A100 first-token
latencies and NeMo's A100 rows (the A100 is never fitted: two published sources kept out of every
fit). The H100's engine rows are all fitted; no held-out published H100 engine source is in the project.

``python -m baselines.calibration --write`` refits and rewrites the ``fitted`` block of
``baselines/data/gpu_constants.yaml`` and NeMo's three runtime terms in ``rdusim/data/stacks/nemo-2023.yaml``.

A user's own GPU (``rdusim calibrate-gpu --models``, or ``--from-json`` on a saved run) is fitted the same
way (:func:`fit_measurement`): the same four constants, the same robust loss, on the prefill, eager decode
and CUDA-graph decode times of that run (:func:`harness_points`), each predicted from the graph of the
decoder that was timed on that GPU's platform (its measured copy and GEMM rates and graph launch gap).
"""
from __future__ import annotations

import argparse
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, lsq_linear

from benchmarks.decoder import workload_graph
from benchmarks.models import ModelConfig, get_model, load_models
from rdusim.core.loader import load_json, load_yaml, mapping, read_text
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import Platform
from rdusim.core.stacks import load_stack

from baselines.gpu import (CONSTANTS_FILE, ENGINE_STACK, PLATFORM_FITTED, GpuConstants, GpuDevice, GpuKernels,
                           request_overhead, total_time)
from baselines.lowering import lower
from baselines.published import nemo_table
from rdusim.core.yamltext import replace_number

DATA = Path(__file__).parent / "data"
MEASURED_FILE = DATA / "measured" / "h100_sxm.json"
TRTLLM_FILE = DATA / "trtllm_ttft.yaml"
LMDEPLOY_FILE = DATA / "lmdeploy_a100.yaml"
FITTED = ("stream_efficiency", "gemm_efficiency", "kernel_ramp", "eager_host")
BOUNDS = ([0.2, 0.2, 0.0, 1e-6], [1.0, 1.0, 30e-6, 200e-6])
X_SCALE = [0.1, 0.1, 1e-6, 1e-5]
ROBUST_SCALE = 0.1  # Cauchy loss scale on log time: residuals beyond ~10% count less and less
STATIC_CACHE_EXTRA = 200  # the measured program's KV cache holds prompt + 200 positions
COLUMNS = ["point", "source", "platform", "model", "mode", "phase", "batch", "prompt", "gen", "context", "tp",
           "measured_ms"]


def measured_points(path: Path = MEASURED_FILE) -> pd.DataFrame:
    """One row per measured model time: model, mode, phase, batch, prompt, gen, context, measured_ms."""
    data = mapping(f"measurement {path}", load_json(path, f"measurement {path}"), "a mapping of models")
    rows = []
    for model in ("llama2-7b", "mistral-7b"):
        block = data.get(model, {})
        prompt = int(block.get("prompt", 128))
        for key, value in block.items():
            if m := re.fullmatch(r"prefill_ms_bs(\d+)", key):
                rows.append((key, model, "eager", "prefill", int(m[1]), prompt, 0, prompt, value))
            elif m := re.fullmatch(r"prefill_ms_bs(\d+)_seq(\d+)", key):
                rows.append((key, model, "eager", "prefill", int(m[1]), int(m[2]), 0, int(m[2]), value))
            elif m := re.fullmatch(r"decode_(eager|graph)_ms_bs(\d+)_gen(\d+)", key):
                mode = "eager" if m[1] == "eager" else "cuda-graph"
                rows.append((key, model, mode, "decode", int(m[2]), prompt, int(m[3]), prompt + STATIC_CACHE_EXTRA, value))
    frame = pd.DataFrame(rows, columns=["point", "model", "mode", "phase", "batch", "prompt", "gen", "context",
                                        "measured_ms"])
    frame["platform"] = "h100-sxm"
    frame["tp"] = 1
    frame["source"] = "H100 SXM measurement (PyTorch)"
    return frame[COLUMNS]


def trtllm_points(path: Path = TRTLLM_FILE) -> pd.DataFrame:
    """TensorRT-LLM first-token latencies (validation only)."""
    rows = load_yaml(path, f"published table {path}")
    frame = pd.DataFrame(rows).rename(columns={"ttft_ms": "measured_ms"})
    frame["point"] = [f"trtllm_{r.model}_tp{r.tp}_p{r.prompt}" for r in frame.itertuples()]
    frame["mode"], frame["phase"], frame["batch"], frame["gen"] = "fused", "prefill", 1, 0
    frame["context"] = frame["prompt"]
    frame["source"] = "TensorRT-LLM v0.5 TTFT (A100, FP16)"
    return frame[COLUMNS]


def lmdeploy_points(path: Path = LMDEPLOY_FILE) -> pd.DataFrame:
    """LMDeploy decode time per step (ms): (batch x output / throughput - first-token latency) / (output - 1)."""
    frame = pd.DataFrame(load_yaml(path, f"published table {path}"))
    per_step = (frame.batch * frame.output / frame.throughput_tok_s - frame.ftl_s) / (frame.output - 1)
    frame["measured_ms"] = per_step * 1e3
    frame["point"] = [f"lmdeploy_{r.model}_bs{r.batch}" for r in frame.itertuples()]
    frame["mode"], frame["phase"], frame["tp"] = "fused", "decode", 1
    frame["gen"] = 1
    frame["context"] = frame.prompt + frame.output // 2
    frame["source"] = "LMDeploy v0.1 TurboMind (A100, FP16)"
    return frame[COLUMNS]


def nemo_points() -> pd.DataFrame:
    """NeMo/TensorRT-LLM request latency on a DGX (TP 1 to 8): prompt pass + ``output`` decode steps."""
    frame = nemo_table().rename(columns={"input_tokens": "prompt", "output_tokens": "gen"})
    frame["measured_ms"] = frame.latency_s * 1e3
    frame["platform"] = "dgx-" + frame.gpu
    frame["point"] = [f"nemo_{r.gpu}_{r.model}_tp{r.tp}_bs{r.batch}" for r in frame.itertuples()]
    frame["mode"], frame["phase"] = "fused", "request"
    frame["context"] = frame.prompt + frame.gen // 2
    frame["source"] = "NeMo TensorRT-LLM (DGX, BF16)"
    return frame[COLUMNS].reset_index(drop=True)


@lru_cache(maxsize=None)
def _kernels(model: str, mode: str, phase: str, batch: int, seq: int, tp: int) -> GpuKernels:
    return lower(workload_graph(get_model(model), phase, batch, seq, tp, attention_impl="sdpa"), mode)


def _pass_times(p, dev: GpuDevice, const: GpuConstants) -> tuple[float, float, float, float]:
    """(prefill time, one decode step, all-reduces in the prefill, all-reduces per decode step) of a point."""
    kp = _kernels(p.model, p.mode, "prefill", int(p.batch), int(p.prompt), int(p.tp))
    kd = _kernels(p.model, p.mode, "decode", int(p.batch), int(p.context), int(p.tp))
    b = int(p.batch)
    return (total_time(kp, dev, const, b), total_time(kd, dev, const, b), float(kp.collectives.sum()),
            float(kd.collectives.sum()))


@lru_cache(maxsize=None)
def _shape_kernels(shape: tuple, mode: str, phase: str, batch: int, seq: int) -> GpuKernels:
    """Kernels of the decoder a calibrate-gpu run timed, from its ``(name, *HARNESS_SHAPE)`` (one GPU)."""
    return lower(workload_graph(_harness_config(shape), phase, batch, seq, 1, attention_impl="sdpa"), mode)


def predict_ms(points: pd.DataFrame, const: GpuConstants, platform: Platform | None = None,
               shapes: dict[str, tuple] | None = None) -> np.ndarray:
    """Model time (ms) of each point: prefill, gen x one decode step at ``context``, or a request (both).

    Each point runs on the platform it names, or on ``platform`` when given; a model named in ``shapes``
    (a calibrate-gpu run's own decoder, see :func:`harness_points`) is built from its shape, else from the zoo.
    A request, and a first token (prefill), include the mode's fixed work per request.
    """
    out = np.empty(len(points))
    devices: dict[str, GpuDevice] = {}
    shapes = shapes or {}

    def kernels(p, phase, seq):
        if p.model in shapes:
            return _shape_kernels(shapes[p.model], p.mode, phase, int(p.batch), int(seq))
        return _kernels(p.model, p.mode, phase, int(p.batch), int(seq), int(p.tp))

    for i, p in enumerate(points.itertuples()):
        if platform is not None:
            dev = devices.get("") or devices.setdefault("", GpuDevice.from_platform(platform, const))
        else:
            dev = devices.get(p.platform) or devices.setdefault(p.platform, GpuDevice.from_platform(p.platform, const))
        t = 0.0
        if p.phase in ("prefill", "request"):
            t += total_time(kernels(p, "prefill", p.prompt), dev, const, int(p.batch))
            t += request_overhead(p.mode, const)
        if p.phase in ("decode", "request"):
            t += int(p.gen) * total_time(kernels(p, "decode", p.context), dev, const, int(p.batch))
        out[i] = t * 1e3
    return out


def fit(points: pd.DataFrame, start: GpuConstants | None = None, platform: Platform | None = None,
        shapes: dict[str, tuple] | None = None) -> GpuConstants:
    """Robust least-squares fit of the four PyTorch-kernel constants to ``points`` (log residuals);
    ``platform`` and ``shapes`` as in :func:`predict_ms`."""
    start = start or GpuConstants.load()
    measured = points["measured_ms"].to_numpy(float)

    def residuals(x):
        const = start.with_fitted(dict(zip(FITTED, x)))
        return np.log(predict_ms(points, const, platform, shapes) / measured)

    x0 = np.clip([getattr(start, f) for f in FITTED], BOUNDS[0], BOUNDS[1])
    result = least_squares(residuals, x0, bounds=BOUNDS, x_scale=X_SCALE, diff_step=1e-3, loss="cauchy",
                           f_scale=ROBUST_SCALE)
    return start.with_fitted(dict(zip(FITTED, result.x)))


# ------------------------------------------------------------------ a calibrate-gpu run, fitted to its own GPU
# The decoder baselines/calibrate.py times (TinyLlama): RMSNorm, fused QKV, RoPE, SDPA attention, SwiGLU MLP,
# untied LM head; its shape is recorded per model in the measurement (``config``).
HARNESS_SHAPE = ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab")
HARNESS_ARCH = {"mlp": "swiglu", "norm": "rmsnorm", "norms_per_layer": 2, "position": "rope",
                "tied_embeddings": False, "eager_attention": "sdpa"}
HARNESS_CACHE_SLACK = 4  # its static KV cache holds prompt + decode steps + 4 positions, all attended under a mask
HARNESS_KEYS = {"prefill": ("eager", "prefill"), "decode_eager": ("eager", "decode"),
                "decode_graph": ("cuda-graph", "decode")}


def _harness_config(shape: tuple) -> ModelConfig:
    name, *values = shape
    return ModelConfig(name=name, source="decoder timed by rdusim calibrate-gpu", reference_params=1.0,
                       **dict(zip(HARNESS_SHAPE, values)), **HARNESS_ARCH)


def _harness_shape(name: str, block: dict) -> tuple | None:
    """``(name, layers, hidden, heads, kv_heads, ffn, vocab)`` of a timed model, from its ``config``; None for a
    zoo model recorded without one (a run from before configs were recorded)."""
    cfg = block.get("config")
    if cfg is None:
        if name in load_models():
            return None
        raise ConfigError(f"models.{name}.config", None, "the timed decoder's " + ", ".join(HARNESS_SHAPE)
                          + " (or a model name of the zoo: " + ", ".join(load_models()) + ")")
    values = [cfg.get(k) if isinstance(cfg, dict) else None for k in HARNESS_SHAPE]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ConfigError(f"models.{name}.config", cfg, "whole numbers > 0 for " + ", ".join(HARNESS_SHAPE))
    shape = (name, *values)
    _harness_config(shape)  # checks heads against kv_heads
    return shape


def harness_points(measurement: dict) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """The model timings of a ``rdusim calibrate-gpu --models`` measurement as calibration points, and the
    shape of each timed decoder (for :func:`predict_ms`).

    Per model and batch B: ``prefill_ms_bs{B}`` (eager prompt pass of ``prompt`` tokens),
    ``decode_eager_ms_per_step_bs{B}`` and ``decode_graph_ms_per_step_bs{B}`` (one decode step, attending to
    the whole static cache of ``cache_positions`` = prompt + decode steps + 4 positions). Models that failed
    (``error``) are left out.
    """
    rows, shapes = [], {}
    for name, block in (measurement.get("models") or {}).items():
        if not isinstance(block, dict) or "error" in block:
            continue
        prompt, steps = int(block.get("prompt", 0)), int(block.get("decode_steps", 0))
        cache = int(block.get("cache_positions", prompt + steps + HARNESS_CACHE_SLACK))
        shape = _harness_shape(name, block)
        if shape is not None:
            shapes[name] = shape
        for key, value in block.items():
            m = re.fullmatch(r"(prefill|decode_eager|decode_graph)_ms(?:_per_step)?_bs(\d+)", key)
            if not m or isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                continue
            mode, phase = HARNESS_KEYS[m[1]]
            if prompt < 1 or (phase == "decode" and cache < 1):
                raise ConfigError(f"models.{name}.prompt", prompt, "a whole number >= 1")
            rows.append((f"{name}_{key}", f"rdusim calibrate-gpu on {measurement.get('name', 'unknown device')}",
                         "measured", name, mode, phase, int(m[2]), prompt, 1 if phase == "decode" else 0,
                         cache if phase == "decode" else prompt, 1, float(value)))
    return pd.DataFrame(rows, columns=COLUMNS), shapes


def fit_measurement(measurement: dict, platform: Platform, start: GpuConstants | None = None
                    ) -> tuple[GpuConstants, pd.DataFrame]:
    """Fit :data:`FITTED` to a calibrate-gpu run's own model timings on its ``platform`` (built from the same
    run: measured copy, GEMM and launch). The curves are left out, as they are wherever a platform carries
    fitted constants (:mod:`baselines.gpu`). Returns the constants and the points with ``predicted_ms``
    and ``rel_err``. Raises :class:`ConfigError` when the run has no model timings."""
    points, shapes = harness_points(measurement)
    if points.empty:
        raise ConfigError("measurement.models", sorted(measurement.get("models") or {}),
                          "prefill and decode timings (run calibrate-gpu with --models)")
    base = replace(platform, curves={}, device={k: v for k, v in platform.device.items() if k not in PLATFORM_FITTED})
    const = fit(points, start, base, shapes)
    table = points.copy()
    table["predicted_ms"] = predict_ms(points, const, base, shapes)
    table["rel_err"] = table["predicted_ms"] / table["measured_ms"] - 1
    return const, table


def fit_engine(points: pd.DataFrame, const: GpuConstants) -> GpuConstants:
    """Least-squares fit of ``engine_stream_efficiency`` (fused mode) to engine decode ``points``."""
    measured = points["measured_ms"].to_numpy(float)

    def residuals(x):
        return np.log(predict_ms(points, const.with_fitted({"engine_stream_efficiency": x[0]})) / measured)

    x0 = [min(max(const.engine_stream_efficiency, 0.2), 1.0)]
    result = least_squares(residuals, x0, bounds=([0.2], [1.0]), diff_step=1e-3)
    return const.with_fitted({"engine_stream_efficiency": float(result.x[0])})


ENGINE_OVERHEADS = ("engine_request", "engine_step", "engine_sequence_step", "allreduce_latency")


def fit_engine_overheads(points: pd.DataFrame, const: GpuConstants) -> GpuConstants:
    """Fit an engine's fixed work per request, per step and per sequence-step, and the H100 all-reduce
    latency, to request latencies ``points`` (phase ``request``, on H100 platforms). A request's time is
    linear in the four: ``request + (1 + G)(step + B sequence_step) + (all-reduces of the prefill + G x
    those of a step) x latency`` plus the kernels' own time, so the fit is a non-negative linear least
    squares on relative error."""
    zero = const.with_fitted(dict.fromkeys(ENGINE_OVERHEADS, 0.0))
    rows, base = [], []
    for p in points.itertuples():
        dev = GpuDevice.from_platform(p.platform, zero)
        prefill, step, ar_prefill, ar_step = _pass_times(p, dev, zero)
        gen = int(p.gen)
        base.append((prefill + gen * step) * 1e3)
        rows.append([1e3, (1 + gen) * 1e3, (1 + gen) * int(p.batch) * 1e3, (ar_prefill + gen * ar_step) * 1e3])
    measured = points["measured_ms"].to_numpy(float)
    a = np.asarray(rows) / measured[:, None]
    b = (measured - np.asarray(base)) / measured
    x = lsq_linear(a, b, bounds=(0.0, np.inf)).x
    return const.with_fitted(dict(zip(ENGINE_OVERHEADS, (float(v) for v in x))))


def kernels_only(const: GpuConstants) -> GpuConstants:
    """``const`` without NeMo's engine runtime work: LMDeploy's TurboMind runtime is C++ and its published
    decode rates are taken as kernel time alone (the assumption under which ``engine_stream_efficiency``
    is fitted to them)."""
    return const.with_fitted({"engine_request": 0.0, "engine_step": 0.0, "engine_sequence_step": 0.0})


def fit_all(start: GpuConstants | None = None) -> GpuConstants:
    """The packaged fit: PyTorch constants on the H100 file; an engine's kernel streaming efficiency on
    LMDeploy's A100 batch-1 decode; then NeMo's runtime work and the all-reduce latency on NeMo's H100 rows."""
    const = fit(measured_points(), start)
    lmdeploy = lmdeploy_points()
    const = fit_engine(lmdeploy[lmdeploy.batch == 1], kernels_only(const))
    nemo = nemo_points()
    return fit_engine_overheads(nemo[nemo.platform == "dgx-h100"], const)


def calibration_table(const: GpuConstants | None = None) -> pd.DataFrame:
    """Measured vs predicted for every calibration and validation point, with the generalisation splits.

    Columns: point, source, platform, model, mode, phase, batch, prompt, gen, context, tp, measured_ms,
    predicted_ms, rel_err, split. ``split``: ``fit`` (all H100 points), ``fit_engine`` (LMDeploy batch 1),
    or a check never fitted: ``holdout_mistral`` (fit on Llama-2-7B, predict Mistral-7B), ``holdout_bs8``
    (fit on batch 1, predict batch 8), ``unseen_lmdeploy_batch`` (LMDeploy batch 16-64),
    ``unseen_trtllm`` (TensorRT-LLM A100 first tokens), ``fit_engine_nemo`` (NeMo H100 requests, TP 1-8,
    fitted), ``unseen_nemo_a100`` (NeMo A100 requests, never fitted).
    """
    h100 = measured_points()
    full = const or fit_all()
    parts = []

    def add(frame, constants, split):
        t = frame.copy()
        t["predicted_ms"], t["split"] = predict_ms(t, constants), split
        parts.append(t)

    add(h100, full, "fit")
    add(h100[h100.model == "mistral-7b"], fit(h100[h100.model == "llama2-7b"], full), "holdout_mistral")
    add(h100[h100.batch != 1], fit(h100[h100.batch == 1], full), "holdout_bs8")
    engine = lmdeploy_points()
    add(engine[engine.batch == 1], kernels_only(full), "fit_engine")
    add(engine[engine.batch != 1], kernels_only(full), "unseen_lmdeploy_batch")
    add(trtllm_points(), full, "unseen_trtllm")
    nemo = nemo_points()
    add(nemo[nemo.platform == "dgx-h100"], full, "fit_engine_nemo")
    add(nemo[nemo.platform != "dgx-h100"], full, "unseen_nemo_a100")
    table = pd.concat(parts, ignore_index=True)
    table["rel_err"] = table["predicted_ms"] / table["measured_ms"] - 1
    return table[COLUMNS + ["predicted_ms", "rel_err", "split"]]


def engine_table(const: GpuConstants | None = None) -> pd.DataFrame:
    """``gpu_engine_nemo.csv``: every row of NeMo's published Llama-2-7B table (128 in, 20 out, batch 1-8,
    TP 1-8, DGX A100 and DGX H100) against the engine model (``fused`` mode with NeMo's runtime work).
    ``basis`` is ``fitted`` for the H100 rows (the engine constants were fitted to them) and
    ``predicted`` for the A100 rows (never fitted)."""
    const = const or GpuConstants.load()
    points = nemo_points()
    out = points[["platform", "model", "tp", "batch", "prompt", "gen"]].copy()
    out["published_ms"] = points.measured_ms
    out["predicted_ms"] = predict_ms(points, const)
    out["rel_err"] = out.predicted_ms / out.published_ms - 1
    out["basis"] = np.where(out.platform == "dgx-h100", "fitted", "predicted")
    out["source"] = "NeMo Framework Llama-2 results, Configuration 1 (article ref. [10])"
    return out


def error_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Median and maximum |error| per split, GPU and mode (the validation table of issue 16)."""
    g = table.assign(abs_err=table.rel_err.abs()).groupby(["split", "platform", "mode"], sort=False)["abs_err"]
    out = g.agg(points="size", median_abs_err="median", max_abs_err="max").reset_index()
    out["source"] = table.groupby(["split", "platform", "mode"], sort=False)["source"].first().to_numpy()
    return out


def constants_yaml(const: GpuConstants, table: pd.DataFrame) -> str:
    """The constants file with the fitted block replaced and the fit's residuals in comments."""
    text = read_text(CONSTANTS_FILE, "gpu constants")
    fit_rows = table[table.split == "fit"]
    values = {"stream_efficiency_fraction": const.stream_efficiency,
              "engine_stream_efficiency_fraction": const.engine_stream_efficiency,
              "gemm_efficiency_fraction": const.gemm_efficiency,
              "kernel_ramp_us": const.kernel_ramp * 1e6, "eager_host_us": const.eager_host * 1e6,
              "allreduce_latency_us": const.allreduce_latency * 1e6}
    for key, value in values.items():
        text = replace_number(text, rf"\n  {key}: ", f"{value:.4f}", f"gpu constants: {key}")
    summary = (f"# last fit: {len(fit_rows)} H100 points, median |error| {fit_rows.rel_err.abs().median():.1%}, "
               f"max |error| {fit_rows.rel_err.abs().max():.1%}")
    text = re.sub(r"\n# last fit:[^\n]*", "", text)
    return text.replace("\nfitted:\n", f"\n{summary}\nfitted:\n", 1)


def stack_yaml(const: GpuConstants) -> str:
    """The nemo-2023 stack file (rdusim/data/stacks) with its three fitted runtime terms replaced."""
    path = Path(load_stack(ENGINE_STACK).path)
    text = path.read_text()
    for key, value in (("request_us", const.engine_request), ("step_us", const.engine_step),
                       ("sequence_step_us", const.engine_sequence_step)):
        text = replace_number(text, rf"\n  {key}:\n    value: ", f"{value * 1e6:.4f}", f"{path}: {key}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refit and rewrite baselines/data/gpu_constants.yaml")
    parser.add_argument("--constants-out", help="write the fitted constants file here instead")
    parser.add_argument("--table-out", help="write the measured-vs-predicted table (CSV) here")
    parser.add_argument("--summary-out", help="write median/max error per split, GPU and mode (CSV) here")
    parser.add_argument("--engine-out", help="write the engine model against NeMo's published table (CSV) here")
    args = parser.parse_args(argv)
    const = fit_all()
    table = calibration_table(const)
    text = constants_yaml(const, table)
    summary = error_summary(table)
    if args.write:
        CONSTANTS_FILE.write_text(text)
        Path(load_stack(ENGINE_STACK).path).write_text(stack_yaml(const))
    for path, write in ((args.constants_out, lambda p: p.write_text(text)),
                        (args.table_out, lambda p: table.to_csv(p, index=False)),
                        (args.summary_out, lambda p: summary.to_csv(p, index=False)),
                        (args.engine_out, lambda p: engine_table(const).to_csv(p, index=False))):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write(Path(path))
    with pd.option_context("display.width", 200, "display.max_columns", 10):
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
