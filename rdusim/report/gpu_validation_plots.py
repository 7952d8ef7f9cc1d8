"""Figures of the GPU validation (:mod:`rdusim.report.gpu_validation`): predicted against measured on
log axes, one panel per stack, and the error against batch, TP and prompt length."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from rdusim.report.plots import _save  # noqa: E402  (the label checks and the byte-stable SVG)

METRIC_MARKERS = {"ttft_ms": "o", "decode_ms_per_token": "s", "total_ms": "^"}
METRIC_LABELS = {"ttft_ms": "time to first token", "decode_ms_per_token": "decode step", "total_ms": "end to end"}
SPLIT_COLOURS = {"fitted": "#9aa5b1", "predicted": "#d1495b"}


def plot_predicted_vs_measured(table: pd.DataFrame, outputs: list[str]) -> None:
    """One panel per stack: predicted against measured (ms, log axes), fitted rows grey, held-out rows red,
    marker by metric; the title gives the held-out rows' median and 90th-percentile |error|."""
    sns.set_theme(style="whitegrid", context="notebook")
    stacks = sorted(table["stack"].unique())
    ncol = 2 if len(stacks) > 2 else len(stacks)
    nrow = -(-len(stacks) // ncol)
    fig, grid = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 4.2 * nrow), squeeze=False)
    axes = [list(grid.flat)]
    for ax in axes[0][len(stacks):]:
        ax.set_visible(False)
    lo, hi = table[["measured_ms", "predicted_ms"]].min().min() / 1.5, table[["measured_ms", "predicted_ms"]].max().max() * 1.5
    for ax, name in zip(axes[0], stacks):
        g = table[table["stack"] == name]
        for (split, metric), part in g.groupby(["split", "metric"]):
            ax.scatter(part.measured_ms, part.predicted_ms, s=14, marker=METRIC_MARKERS[metric],
                       color=SPLIT_COLOURS[split], alpha=0.8, lw=0,
                       label=f"{split}, {METRIC_LABELS[metric]}")
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        for f in (0.8, 1.2):
            ax.plot([lo, hi], [lo * f, hi * f], color="black", lw=0.5, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        held = g[g.split == "predicted"].error.abs()
        gpus = "/".join(sorted(g.hardware.str.upper().unique()))
        ax.set_title(f"{name} ({gpus}, {len(g)} rows)\nheld out: median {held.median():.1%}, p90 {held.quantile(0.9):.1%}",
                     fontsize=9)
        ax.set_xlabel("measured (ms)")
    for ax in grid[:, 0]:
        ax.set_ylabel("predicted (ms)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle("GPU model vs 834 independent measurements (dotted: \u00b120%)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    _save(fig, outputs)


def plot_error_factors(table: pd.DataFrame, outputs: list[str]) -> None:
    """Signed error (%) of every row against batch, TP and prompt length, one colour per stack; the
    held-out rows filled, the fitted ones hollow."""
    sns.set_theme(style="whitegrid", context="notebook")
    stacks = sorted(table["stack"].unique())
    colours = dict(zip(stacks, sns.color_palette("tab10", len(stacks))))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9), sharey=True)
    rng = np.random.default_rng(0)
    for ax, col, label in zip(axes, ("batch", "tp", "prompt"), ("batch (sequences)", "tensor-parallel GPUs", "prompt tokens")):
        for name in stacks:
            g = table[table["stack"] == name]
            x = g[col].to_numpy(float) * np.exp(rng.uniform(-0.12, 0.12, len(g)))  # jitter on the log axis
            held = (g.split == "predicted").to_numpy()
            ax.scatter(x[held], 100 * g.error[held], s=10, color=colours[name], label=name)
            ax.scatter(x[~held], 100 * g.error[~held], s=10, facecolor="none", edgecolor=colours[name], lw=0.6)
        ax.axhline(0, color="black", lw=0.8)
        for y in (-20, 20):
            ax.axhline(y, color="black", lw=0.5, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
    axes[0].set_ylabel("prediction error (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(stacks), fontsize=8, frameon=False,
               title="stack: held-out rows filled, fitted rows hollow", title_fontsize=8)
    fig.suptitle("GPU model error against batch, TP and prompt length (dotted: \u00b120%)", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 0.94))
    _save(fig, outputs)
