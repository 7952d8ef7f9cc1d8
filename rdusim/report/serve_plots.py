"""Figures of the single-model serving study (issue 22)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from rdusim.report.plots import _log_ticks, _save

DEPLOYMENT_STYLE = {"static": ("#c44e52", "o", "-"), "prefill-first": ("#4c72b0", "s", "-"),
                    "chunked": ("#55a868", "^", "--"), "inflight": ("#dd8452", "v", "-.")}


def _label(row) -> str:
    stack = getattr(row, "stack", None)
    return f"{row.batching}, {row.instances} x TP{row.tp}" + (f" ({stack})" if isinstance(stack, str) and stack else "")


def plot_serving_engines(engines: pd.DataFrame, capacity: pd.DataFrame, outputs: list[str]) -> None:
    """Left: p99 TTFT against offered load per deployment, the p99 bounds of the capacity table as dotted
    lines, saturated runs ringed. Right: goodput (requests/s within the TTFT and TPOT bounds) against
    offered load, the diagonal being every request in time."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13.2, 4.9))
    first = engines.iloc[0]
    for i, (name, g) in enumerate(engines.groupby("deployment", sort=False)):
        g = g[g.fits.astype(bool)].sort_values("offered_rps")
        row = g.iloc[0]
        color, mark, ls = DEPLOYMENT_STYLE.get(row.batching, ("#8172b2", "D", ":"))
        if row.tp > 1 and row.batching != "static":
            color, mark, ls = "#8172b2", "D", ":"
        ax.plot(g.offered_rps, g.ttft_ms_p99 / 1e3, marker=mark, ls=ls, color=color, lw=1.8, ms=5, label=_label(row))
        bx.plot(g.offered_rps, g.goodput_rps, marker=mark, ls=ls, color=color, lw=1.8, ms=5, label=_label(row))
        sat = g[g.saturated.astype(bool)]
        ax.scatter(sat.offered_rps, sat.ttft_ms_p99 / 1e3, s=140, facecolors="none", edgecolors="red", lw=1.4,
                   zorder=6, label="saturated (backlog grows through the run)" if i == 0 else None)
    for bound in sorted(capacity.ttft_p99_bound_s.unique()):
        ax.axhline(bound, color="#777777", ls=":", lw=1)
        ax.text(engines.offered_rps.min(), bound * 1.08, f"{bound:g} s", fontsize=8, color="#555555")
    lim = [engines.offered_rps.min(), engines.offered_rps.max()]
    bx.plot(lim, lim, color="#bbbbbb", lw=1, ls="--", label="every request within both bounds")
    for a in (ax, bx):
        a.set_xscale("log")
        a.set_yscale("log")
        _log_ticks(a.xaxis)
        _log_ticks(a.yaxis)
        a.set_xlabel("offered load (requests/s, the trace re-timed)")
    ax.set_ylabel("p99 time to first token (s)")
    bx.set_ylabel("goodput (requests/s)")
    bx.set_ylim(bottom=max(0.05, np.nanmin(engines.goodput_rps[engines.goodput_rps > 0]) * 0.7))
    ax.set_title(f"{first.model} on {first.platform}, {first.trace}: p99 TTFT (stack per deployment)",
                 fontsize=10)
    bx.set_title(f"goodput within TTFT {first.ttft_slo_ms / 1e3:g} s and TPOT {first.tpot_slo_ms:g} ms "
                 "(0 is off the axis)", fontsize=10)
    base = capacity.iloc[0]
    best = capacity[capacity.ttft_p99_bound_s == base.ttft_p99_bound_s].sort_values("capacity_rps").iloc[-1]
    # the capacity note under the panels, where no curve runs (the label check of _save found it on one)
    fig.text(0.5, 0.005, f"capacity at p99 TTFT {base.ttft_p99_bound_s:g} s: {best.batching} {best.instances} x "
             f"TP{best.tp} {best.capacity_rps:.1f} req/s, {best.vs_baseline:.0f}x {base.batching} {base.instances} x "
             f"TP{base.tp} ({base.capacity_rps:.2f} req/s)", ha="center", va="bottom", fontsize=8.5)
    ax.legend(fontsize=8, loc="upper left")
    bx.legend(fontsize=8, loc="upper left")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _save(fig, outputs)


def plot_serving_placement(table: pd.DataFrame, outputs: list[str]) -> None:
    """p99 TTFT (top) and goodput (bottom) against offered load, one column per platform, one line per
    placement (groups x TP); saturated runs ringed."""
    sns.set_theme(style="whitegrid", context="notebook")
    platforms = list(dict.fromkeys(table.platform))
    fig, axes = plt.subplots(2, len(platforms), figsize=(4.6 * len(platforms), 7.6), squeeze=False, sharex=True)
    colors = dict(zip(sorted(table.groups.unique()), ["#c44e52", "#dd8452", "#55a868", "#4c72b0", "#8172b2"]))
    for c, platform in enumerate(platforms):
        t = table[(table.platform == platform) & table.fits.astype(bool)]
        top, bottom = axes[0][c], axes[1][c]
        for groups, g in t.groupby("groups"):
            g = g.sort_values("offered_rps")
            label = f"{groups} x TP{int(g.tp.iloc[0])}" + (" (all devices, one batch at a time)" if groups == 1 else "")
            top.plot(g.offered_rps, g.ttft_ms_p99 / 1e3, marker="o", ms=4, lw=1.8, color=colors[groups], label=label)
            bottom.plot(g.offered_rps, g.goodput_rps, marker="o", ms=4, lw=1.8, color=colors[groups], label=label)
            sat = g[g.saturated.astype(bool)]
            top.scatter(sat.offered_rps, sat.ttft_ms_p99 / 1e3, s=110, facecolors="none", edgecolors="red", lw=1.3,
                        zorder=6)
        lim = [table.offered_rps.min(), table.offered_rps.max()]
        bottom.plot(lim, lim, color="#bbbbbb", ls="--", lw=1)
        for a in (top, bottom):
            a.set_xscale("log")
            a.set_yscale("log")
            _log_ticks(a.xaxis)
            _log_ticks(a.yaxis)
        top.set_title(platform, fontsize=10)
        bottom.set_xlabel("offered load (requests/s)")
        top.legend(fontsize=7.5, loc="upper left")
    axes[0][0].set_ylabel("p99 time to first token (s)\n(red rings: saturated)")
    first = table.iloc[0]
    axes[1][0].set_ylabel(f"goodput (requests/s within TTFT {first.ttft_slo_ms / 1e3:g} s\nand TPOT "
                          f"{first.tpot_slo_ms:g} ms; dashed: all)")
    fig.suptitle(f"CoE of {int(first.experts)} Llama-2-7B experts, Zipf {first.zipf:g}: where experts run", fontsize=11)
    fig.tight_layout()
    _save(fig, outputs)
