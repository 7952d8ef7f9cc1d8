"""Published end-to-end latencies of tuned inference engines on GPUs: the article's GPU source.

The article estimates Samba-CoE on a DGX "using published model latency numbers" [A ref. 10]: NVIDIA's
NeMo Framework "Llama-2 Results" page, Configuration 1 (128 input tokens, 20 output tokens, batch 1
to 8, TP 1/2/4/8, TensorRT-LLM engines on DGX A100 80GB and DGX H100). That table is kept as data in
``baselines/data/published/nemo_llama2_inference.csv`` (copied from the project's shared reference,
with its header). This module only reads it; the engine model (``baselines.gpu`` ``fused`` mode plus
the engine constants) is fitted to its H100 rows and checked against its A100 rows.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from rdusim.core.errors import ConfigError
from rdusim.core.tables import read_table

NEMO_FILE = Path(__file__).parent / "data" / "published" / "nemo_llama2_inference.csv"
NEMO_GPUS = ("a100", "h100")


@lru_cache(maxsize=None)
def nemo_table(path: str = str(NEMO_FILE)) -> pd.DataFrame:
    """The NeMo Llama-2 latency table in long form: model, gpu, tp, batch, input/output tokens, latency (s)."""
    wide = read_table(path, comment="#")
    rows = []
    for gpu in NEMO_GPUS:
        part = wide[["model", "tp", "batch", "input_tokens", "output_tokens"]].copy()
        part["gpu"] = gpu
        part["latency_s"] = wide[f"{gpu}_latency_ms"] / 1e3
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def nemo_latency_s(gpu: str, model: str, tp: int, batch: int, input_tokens: int, output_tokens: int) -> float | None:
    """Published latency (s) of one request batch on ``gpu`` (``a100`` or ``h100``), or None where the
    table has no such point (for example 200 output tokens, which the retrievable page lacks)."""
    if gpu not in NEMO_GPUS:
        raise ConfigError("published gpu", gpu, ", ".join(NEMO_GPUS))
    return _nemo_index().get((gpu, model, int(tp), int(batch), int(input_tokens), int(output_tokens)))


@lru_cache(maxsize=None)
def _nemo_index() -> dict[tuple, float]:
    """The table as a dict, read once: the CoE model looks a point up for every sub-batch size."""
    t = nemo_table()
    keys = zip(t.gpu, t.model, t.tp, t.batch, t.input_tokens, t.output_tokens)
    return {tuple(k): float(v) for k, v in zip(keys, t.latency_s)}
