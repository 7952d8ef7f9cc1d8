"""Figure "CoE vs MoE on the three tiers" (issue 21), drawn from its table (:mod:`rdusim.report.moe_tables`)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from rdusim.report.plots import PLATFORM_COLORS, PLATFORM_LABELS, _log_ticks, _save  # noqa: E402

STYLES = {("CoE", "bf16"): "-", ("MoE", "bf16"): "--", ("MoE", "fp8"): ":"}
MARKERS = {("CoE", "bf16"): "o", ("MoE", "bf16"): "s", ("MoE", "fp8"): "^"}


def plot_coe_vs_moe(table: pd.DataFrame, outputs: list[str]) -> None:
    """Latency per output token and output tokens/s per node against batch, one line per platform and
    workload; each fitting line's label gives its placement (weights per device in HBM and in DDR or
    host DRAM); configurations that do not fit are listed under the panels with their reason."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig = plt.figure(figsize=(14, 7.6))
    grid = fig.add_gridspec(2, 2, height_ratios=(3.2, 1.4), hspace=0.32)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    legend_ax, oom_ax = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    missing = []
    for (platform, kind, precision, workload), g in table.groupby(["platform", "kind", "precision", "workload"], sort=False):
        ok = g[g.fits]
        name = f"{PLATFORM_LABELS.get(platform, platform)}: {workload} {precision}"
        if ok.empty:
            missing.append(f"{name}:\n    {g.reason.iloc[0]}")
            continue
        first = ok.iloc[0]
        slow = "DDR" if platform.startswith("sn40l") else "host DRAM"
        tier = f"HBM {first.weights_hbm_GB_per_device:.0f} GB + {slow} {first.weights_slow_GB_per_device:.0f} GB / device"
        style = dict(color=PLATFORM_COLORS.get(platform), ls=STYLES.get((kind, precision), "-."),
                     marker=MARKERS.get((kind, precision), "x"), lw=2, ms=5)
        axes[0].plot(ok.batch, ok.ms_per_token, label=f"{name}\n    weights: {tier}", **style)
        axes[1].plot(ok.batch, ok.tokens_per_s_node, **style)
    for ax, ylabel in zip(axes, ("latency per output token (ms)", "output tokens/s per node")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, subs=(1.0, 2.0, 5.0))
        ax.set_xlabel("batch (requests served together)")
        ax.set_ylabel(ylabel)
    gen = int(table.gen.iloc[0])
    axes[0].set_title(f"Latency per output token ({gen} tokens per request; prompt and expert copies included)",
                      fontsize=10)
    axes[1].set_title("Output tokens per second of one node", fontsize=10)
    for ax in (legend_ax, oom_ax):
        ax.axis("off")
    legend_ax.legend(*axes[0].get_legend_handles_labels(), loc="upper left", fontsize=8, frameon=False)
    if missing:
        oom_ax.text(0.0, 1.0, "Does not fit on one node:\n" + "\n".join(missing), ha="left", va="top", fontsize=8,
                    color="#555555", transform=oom_ax.transAxes)
    _save(fig, outputs)
