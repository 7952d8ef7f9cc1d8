"""Figure of the max-load throughput extra validation: TensorRT-LLM's published Total Output Throughput per
ISL/OSL against the serving simulator's prediction and its sensitivities (:mod:`rdusim.report.max_throughput`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from rdusim.report.max_throughput import GROUP, PACKAGED
from rdusim.report.plots import _log_ticks, _save

PACKAGED_COLOR = "#c44e52"
SENSITIVITY_STYLES = (("#4c72b0", "--"), ("#55a868", "-."), ("#8172b2", ":"), ("#ccb974", "--"), ("#64b5cd", "-."),
                      ("#937860", ":"), ("#da8bc3", "--"), ("#8c8c8c", "-."))


def plot_max_throughput(table: pd.DataFrame, labels: dict[str, str], outputs: list[str]) -> None:
    """One panel per model x GPU: published throughput (black dots) and rdusim's prediction (red line) per
    ISL/OSL on a log axis, each sensitivity (``labels``: name -> legend text, the table's ``error_<name>``
    columns) a thin line of its own colour; the panel title gives the packaged median error."""
    sns.set_theme(style="whitegrid", context="notebook")
    groups = list(table.groupby(GROUP, sort=False))
    cols = 2
    rows = int(np.ceil(len(groups) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12.5, 3.9 * rows), squeeze=False)
    names = [c[len("throughput_predicted_"):] for c in table.columns if c.startswith("throughput_predicted_")]
    for ax, ((model, gpu, tp), g) in zip(axes.flat, groups):
        x = np.arange(len(g))
        ax.plot(x, g.throughput_published, "o", color="black", ms=7, zorder=5, label="published (TensorRT-LLM)")
        ax.plot(x, g.throughput_predicted, "-s", color=PACKAGED_COLOR, ms=5, lw=2.0, zorder=4,
                label="rdusim, packaged constants (predicted)")
        for i, name in enumerate(names):
            color, ls = SENSITIVITY_STYLES[i % len(SENSITIVITY_STYLES)]
            ax.plot(x, g[f"throughput_predicted_{name}"], ls=ls, color=color, lw=1.3, zorder=3,
                    label=f"sensitivity: {labels.get(name, name)}")
        ax.set_yscale("log")
        _log_ticks(ax.yaxis)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{p}/{o}" for p, o in zip(g.prompt, g.gen)], rotation=35, ha="right", fontsize=9)
        ax.set_xlabel("input / output tokens per request (ISL/OSL)", fontsize=9)
        ax.set_ylabel("output tokens/s", fontsize=10)
        ax.set_title(f"{model}, {gpu} TP{tp}: median error {np.median(g.error):+.0%}", fontsize=10)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    handles, legend = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, legend, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.suptitle(f"Max-load throughput: TensorRT-LLM perf overview (v1.0, trtllm-bench) vs rdusim {PACKAGED} "
                 "and sensitivities (extra validation, never fitted)", fontsize=11)
    fig.tight_layout(rect=(0, 0.09, 1, 0.97))
    _save(fig, outputs)
