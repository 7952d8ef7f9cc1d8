"""The energy and cost figure: Table 2's scenarios in joules per token, the SN40L break-even node power,
and Fig. 8's footprint in dollars per million tokens (tables of :mod:`rdusim.report.energy_tables`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rdusim.core.platforms import load_platform
from rdusim.core.power import power_spec
from rdusim.report.plots import PLATFORM_COLORS, PLATFORM_LABELS, _log_ticks, _save

SCENARIO_LABELS = {"overall_bs8_20tok": "BS 8\n20 tok", "overall_bs1_20tok": "BS 1\n20 tok",
                   "overall_bs8_200tok": "BS 8\n200 tok", "overall_bs1_200tok": "BS 1\n200 tok"}


def _assumption(rdu: str) -> str:
    spec = power_spec(load_platform(rdu))
    return (f"SN40L power ASSUMED (not published):\n{spec.board_w:.0f} W per socket at its limit, "
            f"{spec.idle_w:.0f} W idle,\n{spec.node_overhead_w / 1e3:.1f} kW host and DDR per node "
            f"(node max {spec.node_limit_w / 1e3:.1f} kW)")


def plot_energy(table2: pd.DataFrame, footprint: pd.DataFrame, outputs: list[str]) -> None:
    """Three panels: (a) energy per generated token in each Table 2 scenario (``paper`` profile), SN40L
    bars hatched (assumed power); (b) the SN40L node power at which its energy per token equals each
    DGX's, per scenario and profile, against the assumed SN40L node power; (c) cost per million tokens
    of Fig. 8's footprint against the expert count."""
    rdu = table2.loc[table2["breakeven_sn40l_node_w"].isna(), "platform"].iloc[0]
    platforms = list(dict.fromkeys(table2["platform"]))
    scenarios = [s for s in SCENARIO_LABELS if s in set(table2["scenario"])]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.1, 1.1, 1.0]})

    ax = axes[0]
    paper = table2[table2["profile"] == "paper"]
    width = 0.8 / len(platforms)
    x = np.arange(len(scenarios))
    for i, platform in enumerate(platforms):
        values = paper[paper["platform"] == platform].set_index("scenario").loc[scenarios, "energy_j_per_token"]
        ax.bar(x + (i - (len(platforms) - 1) / 2) * width, values.to_numpy(), width, color=PLATFORM_COLORS.get(platform),
               label=PLATFORM_LABELS.get(platform, platform) + (" (assumed power)" if platform == rdu else ""),
               hatch="//" if platform == rdu else None, edgecolor="white" if platform != rdu else "black", linewidth=0.6)
    ax.set_xticks(x, [SCENARIO_LABELS[s] for s in scenarios])
    ax.set_ylabel("node energy per generated token (J)")
    experts = int(paper["experts"].iloc[0])
    ax.set_title(f"(a) Table 2 scenarios in energy ({experts} experts, paper profile)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")

    ax = axes[1]
    markers = {"paper": "o", "model": "s"}
    for j, platform in enumerate(p for p in platforms if p != rdu):
        for profile, marker in markers.items():
            rows = table2[(table2["platform"] == platform) & (table2["profile"] == profile)].set_index("scenario").loc[scenarios]
            ax.scatter(x + (j - 1) * 0.18, rows["breakeven_sn40l_node_w"].to_numpy() / 1e3, marker=marker, s=42,
                       color=PLATFORM_COLORS.get(platform), facecolors="none" if profile == "model" else PLATFORM_COLORS.get(platform),
                       label=f"vs {PLATFORM_LABELS.get(platform, platform).split(' (')[0]}, {profile} profile")
    assumed = table2[(table2["platform"] == rdu) & (table2["profile"] == "paper")].set_index("scenario").loc[scenarios]
    ax.scatter(x, assumed["avg_power_w"].to_numpy() / 1e3, marker="_", s=500, color="black", linewidths=2,
               label="SN40L node, assumed average power", zorder=5)
    spec = power_spec(load_platform(rdu))
    ax.axhline(spec.node_limit_w / 1e3, color="black", linestyle=":", linewidth=1)
    ax.text(x[-1] + 0.45, spec.node_limit_w / 1e3, " assumed\n node max", fontsize=7, va="center")
    ax.set_xticks(x, [SCENARIO_LABELS[s] for s in scenarios])
    ax.set_xlim(-0.6, len(scenarios) - 0.1)
    ax.set_ylim(0, 1.45 * np.nanmax(table2["breakeven_sn40l_node_w"]) / 1e3)  # room for the legend above the marks
    ax.set_ylabel("SN40L node power at equal energy per token (kW)")
    ax.set_title("(b) break-even: SN40L wins on energy below these powers", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=2)  # 7 pt: the smallest label the figure check allows
    ax.text(0.98, 0.03, _assumption(rdu), transform=ax.transAxes, fontsize=7, ha="right", va="bottom",
            bbox={"boxstyle": "round", "facecolor": "#fff3cd", "edgecolor": "#b58900"})

    ax = axes[2]
    for platform, rows in footprint.groupby("platform", sort=False):
        ax.plot(rows["experts"], rows["cost_usd_per_mtok"], marker="o", markersize=3,
                color=PLATFORM_COLORS.get(platform), label=PLATFORM_LABELS.get(platform, platform)
                + (" (assumed price)" if platform == rdu else ""), linestyle="--" if platform == rdu else "-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_ticks(ax.xaxis)
    _log_ticks(ax.yaxis)
    b, g = int(footprint["batch"].iloc[0]), int(footprint["gen"].iloc[0])
    ax.set_xlabel("Llama-2-7B experts in the CoE")
    ax.set_ylabel("USD per million generated tokens")
    ax.set_title(f"(c) Fig. 8 footprint in money (BS {b}, {g} tok, all nodes billed)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("The article's comparison in energy and cost. Every SN40L value rests on assumed power "
                 "(hatched, dashed): SambaNova publishes none", fontsize=11)
    fig.tight_layout()
    _save(fig, outputs)
