"""Figures of the report. Each function takes the table a pipeline stage wrote and saves PNG and SVG."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PLATFORM_LABELS = {
    "sn40l-node": "SN40L Node (8 sockets)",
    "dgx-a100": "DGX A100 (8x A100 80 GB)",
    "dgx-h100": "DGX H100 (8x H100 80 GB)",
    "dgx-h200": "DGX H200 (8x H200 141 GB)",
}


def _save(fig, outputs: list[str]) -> None:
    for out in outputs:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150, bbox_inches="tight")
    plt.close(fig)


def plot_footprint(table: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 8: nodes needed to serve N experts at TP8 latency, per platform.

    Platforms with identical capacity (DGX A100 and DGX H100 both have 640 GB of HBM) overlap; they
    are drawn with different line styles so both stay visible.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(8, 4.8))
    styles = ["-", "--", ":", "-."]
    for i, (platform, group) in enumerate(table.groupby("platform", sort=False)):
        per_node = int(group["experts_per_node_full_speed"].iloc[0])
        ax.step(group["experts"], group["nodes"], where="post", lw=2.2, ls=styles[i % len(styles)],
                label=f"{PLATFORM_LABELS.get(platform, platform)}: {per_node} experts/node")
    ax.set_xlim(0, table["experts"].max())
    ax.set_ylim(0, None)
    ax.set_xlabel("Llama-2-7B experts in the CoE (BF16, 13.5 GB each)")
    ax.set_ylabel("nodes needed at full speed")
    ax.set_title("System footprint to serve N experts at TP8 latency\n"
                 "(SN40L: HBM + DDR; DGX: HBM only, less router and KV cache)", fontsize=11)
    ax.legend(frameon=True, fontsize=9, loc="upper left")
    _save(fig, outputs)
