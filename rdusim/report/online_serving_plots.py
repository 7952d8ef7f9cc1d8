"""Figure of the online-serving validation (issue 22): published mean TTFT and mean TPOT against load, with
the serving simulator's predictions (:mod:`rdusim.report.online_serving`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from rdusim.report.plots import _log_ticks, _save

SERIES_COLORS = ("#4c72b0", "#c44e52", "#55a868", "#8172b2", "#ccb974", "#64b5cd")


def plot_online_serving(table: pd.DataFrame, outputs: list[str]) -> None:
    """Left: mean TTFT, right: mean TPOT, against concurrency (log-log), one colour per source and length
    pair: published values as filled markers joined by a thin line, predictions as open markers on a dashed
    line (the locked closed loop) and open triangles on a dotted one (random client phases, below saturation);
    points at saturation (the source's throughput no longer grows) ringed in grey."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 2, figsize=(13.2, 5.0))
    keys = ["source", "model", "platform", "tp", "precision", "prompt", "gen"]
    for i, (_, g) in enumerate(table.groupby(keys, sort=False)):
        g = g.sort_values("concurrency")
        row = g.iloc[0]
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        name = f"{row.model_as_published}, TP{row.tp}, {row.precision}, {row.prompt} in / {row.gen} out"
        for ax, metric in zip(axes, ("ttft", "tpot")):
            ax.plot(g.concurrency, g[f"{metric}_ms_measured"], marker="o", ms=6, lw=1, color=color,
                    label=f"published: {name}")
            ax.plot(g.concurrency, g[f"{metric}_ms_predicted"], marker="s", ms=6, lw=1.6, ls="--", color=color,
                    markerfacecolor="none", label=f"rdusim, locked closed loop: {name}")
            rand = g[g[f"{metric}_ms_random_phase"].notna()]
            if len(rand) > 1:
                ax.plot(rand.concurrency, rand[f"{metric}_ms_random_phase"], marker="^", ms=6, lw=1.4, ls=":",
                        color=color, markerfacecolor="none", label=f"rdusim, random client phases: {name}")
            sat = g[~g.below_saturation.astype(bool)]
            ax.scatter(sat.concurrency, sat[f"{metric}_ms_measured"], s=150, facecolors="none", edgecolors="#777777",
                       lw=1.2, zorder=5, label="at saturation (published throughput flat)" if i == 0 else None)
    for ax, label in zip(axes, ("mean time to first token (ms)", "mean time per output token, ITL (ms)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_ticks(ax.xaxis)
        _log_ticks(ax.yaxis)
        ax.set_xlabel("concurrency (clients in flight, closed loop)")
        ax.set_ylabel(label)
    first = table.iloc[0]
    axes[0].set_title(f"TTFT: {first.engine}", fontsize=9)
    axes[1].set_title(f"TPOT: stack {first.stack}, {first.batching} steps of {first.token_budget:g} tokens", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    _save(fig, outputs)
