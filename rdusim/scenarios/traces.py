"""Request traces with per-request lengths: one reader (:func:`read_request_trace`) and the ways a run
uses a trace (replay its timestamps, re-time it to a rate, or draw lengths from it for Poisson arrivals).

Schema of a trace, after reading: ``arrival_s`` (float seconds from the first request, ascending),
``prompt`` and ``gen`` (whole tokens >= 1), and ``expert`` (whole id >= 0) when the file has one. Two
file formats are read:

* the Azure LLM inference traces 2023 (``TIMESTAMP,ContextTokens,GeneratedTokens``; Microsoft Azure,
  Azure Public Dataset, ``AzureLLMInferenceDataset2023.md``, CC BY 4.0; Patel et al., "Splitwise",
  ISCA 2024): the timestamp becomes seconds after the first request;
* a plain CSV with ``arrival_s`` and ``prompt``, ``gen`` (and optionally ``expert``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from rdusim.core.checks import number, whole
from rdusim.core.errors import ConfigError, Described
from rdusim.core.loader import Column, read_csv_columns

MAX_TRACE_ROWS = 100_000_000
MAX_TIME_S = 1e9
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
PLAIN_COLUMNS = ("arrival_s", "prompt", "gen")
# Every column a trace file may have (a new column is one entry), read by rdusim.core.loader.read_csv_columns:
# ASCII numbers only, no ragged rows or duplicate columns, errors that never show the file's content.
TRACE_SCHEMA = {
    "TIMESTAMP": Column("text", 0, 64, required=False),
    "ContextTokens": Column("whole", 1, 2**31, required=False, what="prompt tokens"),
    "GeneratedTokens": Column("whole", 1, 2**31, required=False, what="generated tokens"),
    "arrival_s": Column("number", 0, MAX_TIME_S, required=False, what="seconds"),
    "prompt": Column("whole", 1, 2**31, required=False, what="prompt tokens"),
    "gen": Column("whole", 1, 2**31, required=False, what="generated tokens"),
    "expert": Column("whole", 0, 2**31, required=False, what="expert id"),
}


def read_request_trace(path: str) -> pd.DataFrame:
    """A trace file as a frame of the module's schema, sorted by arrival. Missing, empty or unreadable
    files, unknown columns and bad values raise :class:`ConfigError` naming the file, the first bad row
    (0-based, after the header) and the column."""
    where = f"trace {path}"
    raw = pd.DataFrame(read_csv_columns(path, "trace", TRACE_SCHEMA, MAX_TRACE_ROWS))
    if all(c in raw for c in AZURE_COLUMNS):
        stamps = pd.to_datetime(raw["TIMESTAMP"], errors="coerce", format="mixed")
        bad = stamps.isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise ConfigError(f"{where} row {i}: TIMESTAMP", raw["TIMESTAMP"].iloc[i], "a time YYYY-MM-DD hh:mm:ss.fffffff")
        ns = stamps.to_numpy("datetime64[ns]").astype(np.int64)
        frame = pd.DataFrame({"arrival_s": (ns - ns.min()) / 1e9, "prompt": raw["ContextTokens"],
                              "gen": raw["GeneratedTokens"]})
        names = {"prompt": "ContextTokens", "gen": "GeneratedTokens"}
    elif all(c in raw for c in PLAIN_COLUMNS):
        frame = raw[[c for c in (*PLAIN_COLUMNS, "expert") if c in raw]].copy()
        names = {}
    else:
        raise ConfigError(f"{where} columns", Described(f"{len(raw.columns)} known columns"),
                          f"{', '.join(PLAIN_COLUMNS)}[, expert] or Azure's {', '.join(AZURE_COLUMNS)}")
    arrival = pd.to_numeric(frame["arrival_s"], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arrival) | (arrival < 0) | (arrival > MAX_TIME_S)
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(f"{where} row {i}: arrival_s", frame["arrival_s"].iloc[i], f"seconds from 0 to {MAX_TIME_S:g}")
    out = {"arrival_s": arrival}
    for col in ("prompt", "gen", "expert"):
        if col not in frame:
            continue
        v = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        low = 0 if col == "expert" else 1
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(v) | (v < low) | (v > 2**31) | (v != np.round(v))
        if bad.any():
            i = int(np.argmax(bad))
            raise ConfigError(f"{where} row {i}: {names.get(col, col)}", frame[col].iloc[i], f"a whole number >= {low}")
        out[col] = v.astype(np.int64)
    return pd.DataFrame(out).sort_values("arrival_s", kind="stable").reset_index(drop=True)


def retime(trace: pd.DataFrame, rate: float) -> pd.DataFrame:
    """The trace with its timestamps scaled so that requests arrive at ``rate`` per second on average
    (its bursts kept, stretched or squeezed)."""
    rate = number("rate", rate, 0, above=True, what="requests per second")
    span = float(trace["arrival_s"].iloc[-1] - trace["arrival_s"].iloc[0])
    if len(trace) < 2 or span <= 0:
        return trace.copy()
    scale = (len(trace) - 1) / span / rate
    return trace.assign(arrival_s=(trace["arrival_s"] - trace["arrival_s"].iloc[0]) * scale)


def closed_loop_requests(requests: int, prompt: int = 128, gen: int = 128, lengths=None, seed: int = 0) -> pd.DataFrame:
    """``requests`` requests for a closed loop (their arrival times are set as the run goes:
    :func:`rdusim.scenarios.serve_model.simulate_model` with ``concurrency``; here all 0): every request
    ``prompt`` + ``gen`` tokens, or a (prompt, gen) pair drawn at random from the rows of the trace ``lengths``."""
    requests = whole("requests", requests, 1, MAX_TRACE_ROWS)
    rng = np.random.default_rng(whole("seed", seed, 0))
    p, g = _request_lengths(requests, prompt, gen, lengths, rng)
    return pd.DataFrame({"arrival_s": np.zeros(requests), "prompt": p, "gen": g})


def poisson_with_lengths(rate: float, requests: int, prompt: int = 128, gen: int = 128, lengths=None,
                         seed: int = 0) -> pd.DataFrame:
    """Poisson arrivals at ``rate``/s; every request ``prompt`` + ``gen`` tokens, or a (prompt, gen) pair
    drawn at random (with replacement) from the rows of the trace ``lengths``."""
    rate = number("rate", rate, 0, above=True, what="requests per second")
    requests = whole("requests", requests, 1, MAX_TRACE_ROWS)
    if requests / rate > MAX_TIME_S:
        raise ConfigError("rate", rate, f"at least {requests / MAX_TIME_S:g} requests/s for {requests:,} requests")
    rng = np.random.default_rng(whole("seed", seed, 0))
    arrival = np.cumsum(rng.exponential(1.0 / rate, requests))
    p, g = _request_lengths(requests, prompt, gen, lengths, rng)
    return pd.DataFrame({"arrival_s": arrival, "prompt": p, "gen": g})


def _request_lengths(requests: int, prompt: int, gen: int, lengths, rng) -> tuple[np.ndarray, np.ndarray]:
    """Prompt and output tokens of ``requests`` requests: all ``prompt`` and ``gen``, or (prompt, gen) pairs
    drawn with replacement from the rows of the trace ``lengths`` with ``rng``."""
    if lengths is None:
        return (np.full(requests, whole("prompt", prompt, 1, 2**31), np.int64),
                np.full(requests, whole("gen", gen, 1, 2**31), np.int64))
    pick = rng.integers(0, len(lengths), requests)
    return lengths["prompt"].to_numpy(np.int64)[pick], lengths["gen"].to_numpy(np.int64)[pick]
