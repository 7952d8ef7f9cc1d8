"""The article's Table 1 as data: each benchmark's architecture and the sizes computed from it."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from rdusim.core.loader import load_yaml
from rdusim.core.errors import ConfigError

from .models import (
    flops_per_token,
    get_model,
    kv_bytes_per_token,
    param_count,
    weight_bytes,
)

TABLE1_FILE = Path(__file__).parent / "data" / "table1.yaml"
PHASES = ("prefill", "decode", "train", "fftconv")


@lru_cache(maxsize=None)
def table1_entries() -> tuple[dict, ...]:
    """Rows of the article's Table 1 (benchmark, model, sequence lengths, phases)."""
    rows = load_yaml(TABLE1_FILE, "table1")
    for row in rows:
        for phase in row["phases"]:
            if phase not in PHASES:
                raise ConfigError(f"table1.{row['benchmark']}.phases", phase, ", ".join(PHASES))
    return tuple(rows)


def benchmark_names() -> list[str]:
    """Benchmark names of Table 1, in the article's order."""
    return [row["benchmark"] for row in table1_entries()]


def table1_frame(benchmarks: list[str] | None = None) -> pd.DataFrame:
    """Table 1 with each model's architecture and the quantities computed from it.

    One row per benchmark and sequence length: layers, hidden size, heads, KV heads, FFN size and
    kind, vocabulary, positional scheme; parameters, BF16 weight bytes, forward FLOPs per token at
    that sequence length (a token attending to the whole sequence), KV-cache bytes per token.
    FlashFFTConv has no weights; its architecture columns are empty.
    """
    known = benchmark_names()
    wanted = benchmarks or known
    for name in wanted:
        if name not in known:
            raise ConfigError("benchmarks", name, ", ".join(known))
    records = []
    for row in table1_entries():
        if row["benchmark"] not in wanted:
            continue
        for seq in row["seq_lens"]:
            rec = {
                "benchmark": row["benchmark"],
                "seq_len": seq,
                "phases": "+".join(row["phases"]),
                "sparsity": row.get("sparsity", 0.0),
            }
            if row["model"]:
                m = get_model(row["model"])
                rec.update(
                    model=m.name, layers=m.layers, hidden=m.hidden, heads=m.heads, kv_heads=m.kv_heads,
                    head_dim=m.head_dim, ffn=m.ffn, mlp=m.mlp, norm=m.norm, vocab=m.vocab,
                    position=m.position, sliding_window=m.sliding_window or 0,
                    parallel_blocks=m.parallel_blocks, image_tokens=m.image_tokens,
                    params=param_count(m), reference_params=m.reference_params,
                    weight_bytes_bf16=weight_bytes(m), flops_per_token_fwd=flops_per_token(m, seq),
                    kv_bytes_per_token=kv_bytes_per_token(m), source=m.source,
                )
            else:
                rec.update(model="", source="FlashFFTConv (Fu et al. 2023): FFT convolution, no weights")
            records.append(rec)
    return pd.DataFrame.from_records(records)
