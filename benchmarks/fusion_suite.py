"""The article's Figure 6 workloads: every Table 1 row and phase as an operator graph for one device."""
from __future__ import annotations

from dataclasses import dataclass

from rdusim.core.errors import ConfigError
from rdusim.core.graph import Graph

from .decoder import workload_graph
from .fftconv import fftconv_graph
from .models import get_model
from .table1 import table1_entries


@dataclass(frozen=True)
class Run:
    """One benchmark run: which graph, at which sequence length, phase, batch and TP degree."""

    benchmark: str
    model: str
    seq_len: int
    phase: str
    batch: int
    tp: int
    sparsity: float = 0.0

    def graph(self, fftconv_sequences: int = 16) -> Graph:
        if self.phase == "fftconv":
            return fftconv_graph(self.seq_len, fftconv_sequences)
        return workload_graph(get_model(self.model), self.phase, self.batch, self.seq_len, self.tp, self.sparsity)


def fusion_runs(benchmarks: list[str], batch: dict[str, int], tp: int) -> list[Run]:
    """Runs of Figure 6 for the chosen Table 1 ``benchmarks``; ``batch`` maps phase to batch size.

    All runs use ``tp`` sockets with tensor parallelism except FlashFFTConv (one socket), as in the
    article ("Impact of Operator Fusion").
    """
    known = {row["benchmark"]: row for row in table1_entries()}
    runs = []
    for name in benchmarks:
        if name not in known:
            raise ConfigError("benchmarks", name, ", ".join(known))
        row = known[name]
        for seq in row["seq_lens"]:
            for phase in row["phases"]:
                if phase == "fftconv":
                    runs.append(Run(name, "", seq, phase, 1, 1))
                    continue
                if phase not in batch:
                    raise ConfigError("fusion.batch", sorted(batch), "a batch size for prefill, decode and train")
                runs.append(Run(name, row["model"], seq, phase, batch[phase], tp, row.get("sparsity", 0.0)))
    return runs
