"""TensorRT-LLM's published maximum-load throughput against the serving simulator (extra validation).

Each published point of ``rdusim/data/validation/max_throughput_public.csv`` (source, replay settings and
column meanings in the YAML beside it) is replayed with :func:`rdusim.scenarios.serve_model.simulate_model`:
the source's model, platform and tensor parallelism, FP8 weights, ``requests`` requests of fixed prompt and
output lengths all arriving at 0 (``trtllm-bench throughput`` queues them at once), TensorRT-LLM's scheduler
defaults (``replay`` in the YAML, each an ``input`` or ``assumed`` with its basis, all passed explicitly).
The predicted throughput is trtllm-bench's Total Output Throughput: output tokens / (last finish - first
arrival).

The project found these numbers itself, so they are **extra validation only**: no constant is fitted or
changed because of them and the results are reported apart from the fitted and held-out validations. Each
row's basis is computed (:func:`basis_for`): ``predicted`` while no fitted constant's basis names the source.
To explain the disagreement, ``sensitivities`` in the YAML replay every point with one thing changed (a GPU
constant, a runtime term of the stack, the KV-cache format); they are reported beside the packaged
prediction, never adopted. The summary gives, per model x GPU and overall, the median signed and median
|error| of the packaged model and of each sensitivity, and how far each sensitivity moves the geometric mean
of predicted / published from the packaged model's.

``python -m rdusim.report.max_throughput`` writes ``results/validation/max_throughput{,_summary}.csv``.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from baselines.gpu import CONSTANTS_FILE, FORMAT_GEMM_EFFICIENCIES
from rdusim.core.checks import check_keys, number, whole
from rdusim.core.errors import ConfigError
from rdusim.core.loader import Column, load_yaml, mapping, read_csv_columns, read_text
from rdusim.core.paths import DATA_DIR
from rdusim.core.precision import kv_precision as check_kv_precision
from rdusim.core.stacks import RUNTIME_TERMS, builtin_stacks, load_stack
from rdusim.report.pipeline import table_and_summary_main
from rdusim.scenarios.engine import POLICIES, kv_capacity_tokens, load_engine_settings
from rdusim.scenarios.predict import gpu_constants, use_gpu_constants
from rdusim.scenarios.serve_model import simulate_model

VALIDATION_DIR = DATA_DIR / "validation"
POINTS_FILE = VALIDATION_DIR / "max_throughput_public.csv"
SOURCES_FILE = VALIDATION_DIR / "max_throughput_public.yaml"
PACKAGED = "packaged"  # the variant with every constant as the pipeline's calibration gives it
TEXT = 80  # characters of a text field
POINTS_SCHEMA = {
    "source": Column("text", 0, TEXT),
    "model": Column("text", 0, TEXT),
    "model_as_published": Column("text", 0, TEXT),
    "platform": Column("text", 0, TEXT),
    "gpu": Column("text", 0, TEXT),
    "tp": Column("whole", 1, 64, what="devices per instance"),
    "instances": Column("whole", 1, 64),
    "precision": Column("text", 0, TEXT),
    "prompt": Column("whole", 1, 2**20, what="tokens"),
    "gen": Column("whole", 1, 2**20, what="tokens"),
    "requests": Column("whole", 1, 1_000_000),
    "throughput_tokens_per_s": Column("number", 0, 1e12, what="output tokens/s"),
}
WHOLE_COLUMNS = tuple(k for k, c in POINTS_SCHEMA.items() if c.kind == "whole")
REPLAY_KEYS = ("stack", "precision", "kv_precision", "batching", "max_num_seqs", "token_budget",
               "kv_cache_free_gpu_mem_fraction", "arrivals", "throughput")
SENSITIVITY_KEYS = ("label", "gpu_constants", "stack_runtime", "kv_precision", "batching", "kv_cache_free_gpu_mem_fraction",
                    "max_num_seqs", "token_budget", "basis")
GROUP = ["model_as_published", "gpu", "tp"]


# ----------------------------------------------------------------------------- inputs
def load_sources() -> dict:
    """The YAML of sources, replay settings and sensitivities (``max_throughput_public.yaml``), checked:
    unknown keys and out-of-range values are one-line errors naming the field."""
    src = mapping("max throughput sources", load_yaml(SOURCES_FILE, "max throughput sources"),
                  "a mapping with sources, replay and sensitivities", optional=False)
    check_keys("max throughput sources", src, ("sources", "replay", "sensitivities"))
    replay = mapping("replay", src.get("replay"), "a mapping of replay settings", optional=False)
    check_keys("replay", replay, REPLAY_KEYS)
    for key in REPLAY_KEYS:
        term = mapping(f"replay.{key}", replay.get(key), "a mapping with value and basis", optional=False)
        check_keys(f"replay.{key}", term, ("value", "basis"))
        if not str(term.get("basis", "")).startswith(("input:", "assumed:", "derived:")):
            raise ConfigError(f"replay.{key}.basis", term.get("basis"), "text starting with input:, assumed: or derived:")
    whole("replay.max_num_seqs.value", replay["max_num_seqs"]["value"], 1, 4096)
    whole("replay.token_budget.value", replay["token_budget"]["value"], 1, 2**31)
    number("replay.kv_cache_free_gpu_mem_fraction.value", replay["kv_cache_free_gpu_mem_fraction"]["value"], 0, 1,
           above=True, what="share of the memory left after the weights")
    check_kv_precision(str(replay["kv_precision"]["value"]))
    if replay["batching"]["value"] not in POLICIES:
        raise ConfigError("replay.batching.value", replay["batching"]["value"], ", ".join(POLICIES))
    for name, sens in mapping("sensitivities", src.get("sensitivities"), "a mapping of sensitivities").items():
        check_sensitivity(name, sens)
    return src


def check_sensitivity(name: str, sens) -> dict:
    """One sensitivity of the YAML, checked (see the YAML's comment for its keys)."""
    where = f"sensitivities.{name}"
    sens = mapping(where, sens, "a mapping with label, basis and what it changes", optional=False)
    check_keys(where, sens, SENSITIVITY_KEYS)
    if not str(sens.get("basis", "")).startswith("assumed:"):
        raise ConfigError(f"{where}.basis", sens.get("basis"), "text starting with assumed: (a sensitivity is never fitted)")
    for key, value in mapping(f"{where}.gpu_constants", sens.get("gpu_constants")).items():
        check_keys(f"{where}.gpu_constants", {key: value}, FORMAT_GEMM_EFFICIENCIES)
        number(f"{where}.gpu_constants.{key}", value, 0, 1, above=True, what="a fraction")
    for key, value in mapping(f"{where}.stack_runtime", sens.get("stack_runtime")).items():
        check_keys(f"{where}.stack_runtime", {key: value}, RUNTIME_TERMS)
        number(f"{where}.stack_runtime.{key}", value, 0, what="microseconds")
    if "kv_precision" in sens:
        check_kv_precision(str(sens["kv_precision"]))
    if "kv_cache_free_gpu_mem_fraction" in sens:
        number(f"{where}.kv_cache_free_gpu_mem_fraction", sens["kv_cache_free_gpu_mem_fraction"], 0, 1, above=True,
               what="share of the memory left after the weights")
    if "max_num_seqs" in sens:
        whole(f"{where}.max_num_seqs", sens["max_num_seqs"], 1, 4096)
    if "token_budget" in sens:
        whole(f"{where}.token_budget", sens["token_budget"], 1, 2**31)
    if "batching" in sens and sens["batching"] not in POLICIES:
        raise ConfigError(f"{where}.batching", sens["batching"], ", ".join(POLICIES))
    return sens


def load_points() -> pd.DataFrame:
    """The published points, one row each, through the loader's CSV checks."""
    frame = pd.DataFrame(read_csv_columns(POINTS_FILE, "max throughput points", POINTS_SCHEMA, 10_000))
    for col in WHOLE_COLUMNS:
        frame[col] = frame[col].astype(np.int64)
    return frame


# ----------------------------------------------------------------------------- replay helpers
def kv_memory_fraction(platform: str, model: str, tp: int, precision: str, kv_prec: str, free_fraction: float) -> float:
    """rdusim's ``kv_memory_fraction`` (share of device memory for weights + KV cache) that gives the KV cache
    ``free_fraction`` of the memory left after the weights, as TensorRT-LLM's kv_cache_free_gpu_mem_fraction
    does: ``(weights + free_fraction x (capacity - weights)) / capacity`` per device."""
    _, weights, capacity = kv_capacity_tokens(platform, model, tp, 1.0, precision, kv_prec)
    return (weights + free_fraction * max(capacity - weights, 0.0)) / capacity


def variant_stack_file(base: str, runtime: dict, directory: Path) -> str:
    """Path of a stack file written into ``directory``: stack ``base``'s file with the ``runtime`` terms'
    values (config keys, e.g. ``sequence_step_us``) replaced and their basis saying so; loadable wherever a
    stack name is (a stack may be a path to a YAML file, :mod:`rdusim.core.stacks`)."""
    data = load_yaml(load_stack(base).path, f"stack {base}")
    terms = data.setdefault("runtime", {}) or {}
    for key, value in runtime.items():
        check_keys(f"{base}.runtime", {key: value}, RUNTIME_TERMS)
        old = terms.get(key, {}).get("value", 0.0)
        terms[key] = {"value": float(value), "meaning": terms.get(key, {}).get("meaning", RUNTIME_TERMS[key]),
                      "basis": f"assumed: sensitivity, {key} set to {value:g} (packaged {base}: {old:g})"}
    data["runtime"] = terms
    tag = "-".join(f"{k}-{v:g}" for k, v in sorted(runtime.items()))
    data["name"] = f"{data.get('name', base)}-{tag}"
    path = Path(directory) / f"{base}-{tag}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@contextlib.contextmanager
def active_gpu_constants(values: dict):
    """Run the block with the active GPU constants (:func:`rdusim.scenarios.predict.gpu_constants`: the
    pipeline's calibration, else the packaged file) but ``values`` (keys of gpu_constants.yaml that a weight
    format names as its GEMM efficiency); restore them after. Nothing is written to any file."""
    before = gpu_constants()
    if not values:
        yield before
        return
    fields = {FORMAT_GEMM_EFFICIENCIES[k]: float(v) for k, v in values.items()}
    use_gpu_constants(before.with_fitted(fields))
    try:
        yield gpu_constants()
    finally:
        use_gpu_constants(before)


def fitted_bases() -> list[str]:
    """Every basis a fitted constant of rdusim states: the stacks' fitted runtime and kernel terms and the GPU
    constants file (its ``fitted`` block is described in its comments)."""
    out = [b for n in builtin_stacks() for _, b in load_stack(n).basis if b.startswith("fitted:")]
    out.append(read_text(CONSTANTS_FILE, "gpu constants"))
    return out


def basis_for(source: dict, bases: list[str]) -> str:
    """``predicted`` when no basis in ``bases`` names the source (its url or the file name in it), else
    ``calibrated: <the first basis that does>``."""
    url = str(source.get("url", ""))
    marks = [m for m in (url, url.rsplit("/", 1)[-1]) if m]
    for b in bases:
        if any(m in b for m in marks):
            return "calibrated: " + b.splitlines()[0][:120]
    return "predicted"


def requests_at_once(n: int, prompt: int, gen: int) -> pd.DataFrame:
    """``n`` requests of ``prompt`` input and ``gen`` output tokens, all arriving at 0 (an offline benchmark)."""
    return pd.DataFrame({"arrival_s": np.zeros(n), "prompt": np.full(n, prompt, np.int64),
                         "gen": np.full(n, gen, np.int64)})


def replay_point(row, replay: dict, stack: str, kv_prec: str, batching: str, changes: dict | None = None) -> dict:
    """One published point replayed under ``stack`` (a name or a stack file) with the KV cache in ``kv_prec`` and
    the ``batching`` policy; ``changes`` (a sensitivity's) may replace the replay's ``kv_cache_free_gpu_mem_fraction``,
    ``max_num_seqs`` or ``token_budget``. Returns the predicted Total Output Throughput, the KV cache's tokens,
    the mean and largest running batch."""
    value = {k: replay[k]["value"] for k in ("kv_cache_free_gpu_mem_fraction", "max_num_seqs", "token_budget")}
    value.update({k: v for k, v in (changes or {}).items() if k in value})
    free = float(value["kv_cache_free_gpu_mem_fraction"])
    budget = int(value["token_budget"])
    settings = {**load_engine_settings(), "max_num_seqs": int(value["max_num_seqs"]),
                "chunk_token_budget": budget, "prefill_token_budget": budget,
                "kv_memory_fraction": kv_memory_fraction(row.platform, row.model, int(row.tp), row.precision, kv_prec, free)}
    summary, per = simulate_model(row.platform, row.model, int(row.tp), requests_at_once(int(row.requests), int(row.prompt),
                                  int(row.gen)), batching, instances=int(row.instances),
                                  settings=settings, stack=stack, precision=row.precision, kv_precision=kv_prec)
    if not summary.get("fits", False) or summary.get("rejected", 0):
        return {"throughput": np.nan, "kv_cache_tokens": summary.get("kv_cache_tokens", np.nan), "mean_batch": np.nan,
                "largest_batch": np.nan, "fits": False, "reason": summary.get("reason") or "requests rejected"}
    span = float(per["finish_s"].max() - per["arrival_s"].min())
    return {"throughput": float(per["gen"].sum()) / span, "kv_cache_tokens": int(summary["kv_cache_tokens"]),
            "mean_batch": float(summary["mean_batch"]), "largest_batch": int(summary["largest_batch"]),
            "fits": True, "reason": ""}


# ----------------------------------------------------------------------------- tables
def _variants(src: dict) -> dict:
    return {PACKAGED: {}, **(src.get("sensitivities") or {})}


def max_throughput_table(variants: list[str] | None = None) -> pd.DataFrame:
    """Every published point with the packaged prediction and each sensitivity's (``variants``: those names
    only, ``packaged`` always), relative errors (predicted / published - 1) and the computed basis."""
    src = load_sources()
    points = load_points()
    replay = src["replay"]
    base_stack = str(replay["stack"]["value"])
    base_kv = str(replay["kv_precision"]["value"])
    chosen = {k: v for k, v in _variants(src).items() if k == PACKAGED or variants is None or k in variants}
    bases = fitted_bases()
    out = pd.DataFrame({
        "source": points.source, "model": points.model, "model_as_published": points.model_as_published,
        "platform": points.platform, "gpu": points.gpu, "tp": points.tp, "instances": points.instances,
        "precision": points.precision, "prompt": points.prompt, "gen": points.gen, "requests": points.requests,
        "throughput_published": points.throughput_tokens_per_s})
    # variants that change GPU constants run last: switching constants clears the tabulated step costs
    order = sorted(chosen, key=lambda k: (bool(chosen[k].get("gpu_constants")), k != PACKAGED))
    with tempfile.TemporaryDirectory(prefix="rdusim-stack-") as tmp:
        for name in order:
            sens = chosen[name]
            stack = variant_stack_file(base_stack, sens["stack_runtime"], Path(tmp)) if sens.get("stack_runtime") \
                else base_stack
            kv = str(sens.get("kv_precision", base_kv))
            batching = str(sens.get("batching", replay["batching"]["value"]))
            with active_gpu_constants(sens.get("gpu_constants") or {}):
                res = [replay_point(r, replay, stack, kv, batching, sens) for r in points.itertuples(index=False)]
            tag = "" if name == PACKAGED else f"_{name}"
            pred = np.array([r["throughput"] for r in res])
            out[f"throughput_predicted{tag}"] = pred
            out[f"error{tag}"] = pred / out.throughput_published - 1.0
            if name == PACKAGED:
                out["kv_precision"] = kv
                out["kv_cache_tokens"] = [r["kv_cache_tokens"] for r in res]
                out["mean_batch"] = [r["mean_batch"] for r in res]
                out["largest_batch"] = [r["largest_batch"] for r in res]
                out["fits"] = [r["fits"] for r in res]
                out["reason"] = [r["reason"] for r in res]
    out["basis"] = [basis_for(src["sources"][s], bases) for s in out.source]
    named = [k for k in chosen if k != PACKAGED]  # the YAML's order
    middle = ["throughput_predicted", "error"] + [f"{p}_{k}" for k in named for p in ("throughput_predicted", "error")]
    tail = ["kv_precision", "kv_cache_tokens", "mean_batch", "largest_batch", "fits", "reason", "basis"]
    head = [c for c in out.columns if c not in middle + tail]
    return out[head + middle + tail]


def _stats(g: pd.DataFrame, tag: str) -> dict:
    err = g[f"error{tag}"].to_numpy(float)
    err = err[np.isfinite(err)]
    if not err.size:
        return {"points": 0, "median_error": np.nan, "median_abs_error": np.nan, "geomean_ratio": np.nan}
    return {"points": int(err.size), "median_error": float(np.median(err)), "median_abs_error": float(np.median(np.abs(err))),
            "geomean_ratio": float(np.exp(np.mean(np.log1p(err))))}


def max_throughput_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model x GPU (x TP) and over all points: for the packaged model and each sensitivity (the table's
    ``error_<name>`` columns, in their order), the points, median signed and median |error|, the geometric
    mean of predicted / published, and ``effect_vs_packaged``: that geometric mean over the packaged model's,
    less 1 (how much the change moves the predicted throughput)."""
    tags = [""] + [c[len("error_"):] for c in table.columns if c.startswith("error_")]
    groups = [(f"{m}, {g} TP{tp}", sub) for (m, g, tp), sub in table.groupby(GROUP, sort=False)]
    groups.append(("all", table))
    rows = []
    for group, sub in groups:
        packaged = _stats(sub, "")["geomean_ratio"]
        for tag in tags:
            st = _stats(sub, f"_{tag}" if tag else "")
            rows.append({"group": group, "variant": tag or PACKAGED, **st,
                         "effect_vs_packaged": st["geomean_ratio"] / packaged - 1.0,
                         "basis": sub.basis.iloc[0] if sub.basis.nunique() == 1 else "mixed"})
    return pd.DataFrame(rows)


def summary_for_golden(config: dict) -> pd.DataFrame:
    """The summary as the golden test computes it (it does not depend on the config)."""
    return max_throughput_summary(max_throughput_table())


def main(argv=None) -> None:
    table_and_summary_main(__doc__.split("\n\n")[0], "max_throughput", max_throughput_table, max_throughput_summary, argv)


if __name__ == "__main__":
    main()
