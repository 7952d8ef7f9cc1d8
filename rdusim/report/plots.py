"""Figures of the report. Each function takes the table a pipeline stage wrote and saves PNG and SVG."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PLATFORM_COLORS = {"sn40l-node": "#4c72b0", "dgx-a100": "#dd8452", "dgx-h100": "#55a868", "dgx-h200": "#c44e52"}
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


def plot_roofline(intensity: pd.DataFrame, rooflines: pd.DataFrame, pipeline: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 3: the Monarch FFT's three fusion levels on SN40L and A100 rooflines, and the
    fully fused pipeline's PCUs and PMUs per stage (Fig. 3b)."""

    sns.set_theme(style="whitegrid", context="notebook")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    x = np.logspace(0, 4, 200)
    for row in rooflines.itertuples():
        roof = np.minimum(row.peak_flops, x * row.hbm_bandwidth) / 1e12
        line, = ax.plot(x, roof, lw=2, label=f"{row.platform} roofline (ridge {row.ridge_ops_per_byte:.0f} FLOP/B)")
        ax.axvline(row.ridge_ops_per_byte, color=line.get_color(), ls=":", lw=1)
    labels = {"no_fusion": "no fusion", "gemm0_mul_transpose": "Gemm0+Mul+Transpose fused",
              "fully_fused": "fully fused (streaming)"}
    markers = ["o", "s", "D"]
    sn = rooflines.iloc[0]
    for (row, marker) in zip(intensity.itertuples(), markers):
        y = min(sn.peak_flops, row.ops_per_byte * sn.hbm_bandwidth) / 1e12
        ax.scatter(row.ops_per_byte, y, s=80, marker=marker, zorder=5, color="black")
        ax.annotate(f"{labels.get(row.variant, row.variant)}\n{row.ops_per_byte:.1f} FLOP/B", (row.ops_per_byte, y),
                    textcoords="offset points", xytext=(8, -28), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (FLOP per off-chip byte)")
    ax.set_ylabel("attainable TFLOP/s (BF16)")
    ax.set_title("Monarch FFT (Fig. 3a) on the roofline", fontsize=11)
    ax.legend(fontsize=8, loc="lower right")
    pos = np.arange(len(pipeline))
    bx.bar(pos - 0.2, pipeline["pcus"], width=0.4, label="PCUs (compute)")
    bx.bar(pos + 0.2, pipeline["buffer_pmus"] + pipeline["weight_pmus"], width=0.4, label="PMUs (buffers, constants)")
    bx.set_xticks(pos, pipeline["stage"])
    bx.set_yscale("symlog", linthresh=10)
    bx.set_ylabel("units allotted")
    bx.set_title("Fully fused pipeline (Fig. 3b): units per stage\n(transpose = buffer access pattern, 0 PCUs)",
                 fontsize=10)
    bx.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, outputs)


def plot_fusion(table: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 6: speedup over unfused of fused-SO and fused-HO per benchmark and phase (log)."""
    sns.set_theme(style="whitegrid", context="notebook")
    t = table[table["fits"]].copy()
    t["run"] = t["benchmark"] + " " + (t["seq_len"] // 1024).astype(str) + "K " + t["phase"]
    long = t.melt(id_vars="run", value_vars=["speedup_so", "speedup_ho"], var_name="mode", value_name="speedup")
    long["mode"] = long["mode"].map({"speedup_so": "fused + SO", "speedup_ho": "fused + HO"})
    fig, ax = plt.subplots(figsize=(13, 4.8))
    sns.barplot(data=long, x="run", y="speedup", hue="mode", ax=ax)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log")
    ax.set_ylim(0.8, long["speedup"].max() * 2.5)
    ax.set_ylabel("speedup over unfused (8 sockets; FlashFFTConv 1)")
    ax.set_xlabel("")
    ax.set_title("Operator fusion on the SN40L (model of the article's Fig. 6)", fontsize=11)
    ax.tick_params(axis="x", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    ax.legend(title="", loc="upper left", fontsize=9)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.1f", fontsize=6, padding=1)
    _save(fig, outputs)


def plot_gpu_calibration(table: pd.DataFrame, outputs: list[str]) -> None:
    """Measured vs predicted GPU times: fitted points, held-out checks and unseen engines and GPUs."""

    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(8, 6.5))
    lo = min(table.measured_ms.min(), table.predicted_ms.min()) * 0.7
    hi = max(table.measured_ms.max(), table.predicted_ms.max()) * 1.4
    x = np.array([lo, hi])
    ax.plot(x, x, color="black", lw=1)
    ax.fill_between(x, x * 0.9, x * 1.1, color="green", alpha=0.12, label="within 10%")
    ax.fill_between(x, x * 0.75, x * 1.25, color="orange", alpha=0.08, label="within 25%")
    labels = {"fit": "fitted: H100 (PyTorch)", "holdout_mistral": "held out: Mistral-7B (fit on Llama-2-7B)",
              "holdout_bs8": "held out: batch 8 (fit on batch 1)", "fit_engine": "fitted: LMDeploy A100 batch 1",
              "unseen_lmdeploy_batch": "unseen: LMDeploy A100 batch 16-64",
              "unseen_trtllm": "unseen: TensorRT-LLM A100 first token", "unseen_nemo": "unseen: NeMo TRT-LLM A100/H100"}
    markers = {"eager": "o", "cuda-graph": "s", "fused": "D"}
    palette = dict(zip(labels, sns.color_palette("deep", len(labels))))
    for split, group in table.groupby("split", sort=False):
        for mode, g in group.groupby("mode"):
            err = g.rel_err.abs()
            ax.scatter(g.measured_ms, g.predicted_ms, marker=markers.get(mode, "o"), s=40, color=palette.get(split),
                       edgecolor="black", linewidth=0.4,
                       label=f"{labels.get(split, split)}, {mode} (median {err.median():.0%}, max {err.max():.0%})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured (ms)")
    ax.set_ylabel("predicted by the GPU model (ms)")
    ax.set_title("GPU model: kernel = fixed part + max(FLOPs / GEMM rate, bytes / streaming rate)", fontsize=10)
    ax.legend(fontsize=6.5, loc="upper left")
    _save(fig, outputs)


def plot_breakdown(table: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 2: switching vs execution time for one non-resident Llama-2-7B expert, 20 tokens."""
    sns.set_theme(style="whitegrid", context="notebook")
    profiles = list(dict.fromkeys(table["profile"]))
    batches = sorted(table["batch"].unique(), reverse=True)
    fig, axes = plt.subplots(len(profiles), len(batches), figsize=(5.5 * len(batches), 3.4 * len(profiles)),
                             squeeze=False, sharey="row")
    for i, profile in enumerate(profiles):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            t = table[(table.profile == profile) & (table.batch == batch)]
            labels = [PLATFORM_LABELS.get(p, p).split(" (")[0] for p in t.platform]
            ax.barh(labels, t.execution_ms, label="execution (20 tokens)", color="#4c72b0")
            ax.barh(labels, t.switching_ms, left=t.execution_ms, label="model switching (copy one expert)",
                    color="#dd8452")
            for y, r in enumerate(t.itertuples()):
                ax.text(r.total_ms, y, f" {r.total_ms:.0f} ms", va="center", fontsize=8)
            ax.set_xlim(0, t.total_ms.max() * 1.25)
            ax.invert_yaxis()
            ax.set_title(f"BS={batch}, TP=8 ({profile} profile)", fontsize=10)
            ax.set_xlabel("ms")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle("CoE latency breakdown: switching vs execution for one Llama-2-7B expert", fontsize=11)
    fig.tight_layout()
    _save(fig, outputs)


def plot_latency_vs_experts(table: pd.DataFrame, outputs: list[str], profile: str = "paper", gen: int = 20) -> None:
    """Article Fig. 7: expected CoE latency vs number of experts, BS 8 and BS 1; OOM marked."""
    sns.set_theme(style="whitegrid", context="notebook")
    t = table[(table.profile == profile) & (table.gen == gen)]
    batches = sorted(t["batch"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(batches), figsize=(6.5 * len(batches), 4.5), squeeze=False, sharey=True)
    for ax, batch in zip(axes[0], batches):
        for platform, g in t[t.batch == batch].groupby("platform", sort=False):
            ok = g[g.fits]
            line, = ax.plot(ok.experts, ok.total_ms / 1e3, lw=2, label=PLATFORM_LABELS.get(platform, platform))
            if (~g.fits).any():
                last = ok.iloc[-1]
                ax.scatter([last.experts], [last.total_ms / 1e3], marker="X", s=90, color=line.get_color(), zorder=5)
                ax.annotate(f"OOM above {int(g.max_experts.iloc[0])}", (last.experts, last.total_ms / 1e3),
                            textcoords="offset points", xytext=(5, 6), fontsize=8, color=line.get_color())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Llama-2-7B experts in the CoE")
        ax.set_title(f"BS={batch}, TP=8, {gen} output tokens ({profile} profile)", fontsize=10)
    axes[0][0].set_ylabel("expected latency per batch (s)")
    axes[0][0].legend(fontsize=8, loc="upper left")
    _save(fig, outputs)


def plot_sensitivity(table: pd.DataFrame, outputs: list[str]) -> None:
    """Overall BS 8 speedup over DGX H100 vs host-link and DDR-to-HBM bandwidth, one panel per expert
    count; cells under 1.5x are marked."""
    sns.set_theme(style="white", context="notebook")
    counts = sorted(table["experts"].unique())
    fig, axes = plt.subplots(1, len(counts), figsize=(4.2 * len(counts), 4.0), squeeze=False)
    vmax = table["speedup_vs_dgx_h100"].max()
    for ax, n in zip(axes[0], counts):
        grid = table[table.experts == n].pivot(index="ddr_to_hbm_node_GBps", columns="host_link_GBps",
                                               values="speedup_vs_dgx_h100").sort_index(ascending=False)
        annot = grid.map(lambda v: f"{v:.1f}" + ("*" if v < 1.5 else ""))
        sns.heatmap(grid, ax=ax, annot=annot, fmt="", cmap="viridis", vmin=1, vmax=vmax, cbar=ax is axes[0][-1],
                    annot_kws={"fontsize": 7})
        ax.set_title(f"{n} experts", fontsize=10)
        ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel("DGX host-to-GPU GB/s (node)")
        ax.set_ylabel("SN40L DDR-to-HBM GB/s (node)" if ax is axes[0][0] else "")
    fig.suptitle("SN40L node speedup over DGX H100, BS 8, 20 tokens (* = under 1.5x)", fontsize=11)
    fig.tight_layout()
    _save(fig, outputs)


def plot_serving_load(table: pd.DataFrame, outputs: list[str]) -> None:
    """p99 latency vs offered load, one panel per (experts, skew); OOM platforms noted."""
    sns.set_theme(style="whitegrid", context="notebook")
    experts = sorted(table["experts"].unique())
    skews = sorted(table["zipf"].unique())
    fig, axes = plt.subplots(len(skews), len(experts), figsize=(4.6 * len(experts), 3.6 * len(skews)),
                             squeeze=False, sharex=True, sharey=True)
    for i, skew in enumerate(skews):
        for j, n in enumerate(experts):
            ax = axes[i][j]
            t = table[(table.experts == n) & (table.zipf == skew)]
            oom = []
            for platform, g in t.groupby("platform", sort=False):
                if not g.fits.any():
                    oom.append(PLATFORM_LABELS.get(platform, platform).split(" (")[0])
                    continue
                ax.plot(g.offered_rps, g.p99_s, marker="o", lw=2, label=PLATFORM_LABELS.get(platform, platform),
                        color=PLATFORM_COLORS.get(platform))
            if oom:
                ax.text(0.03, 0.95, "OOM: " + ", ".join(oom), transform=ax.transAxes, fontsize=8, va="top")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{n} experts, Zipf {skew:g}", fontsize=10)
            if i == len(skews) - 1:
                ax.set_xlabel("offered load (requests/s)")
            if j == 0:
                ax.set_ylabel("p99 latency (s)")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("CoE serving: p99 latency vs offered load (20 tokens, batches up to 8, LRU HBM cache)", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _save(fig, outputs)


def plot_serving_policies(table: pd.DataFrame, outputs: list[str]) -> None:
    """HBM hit rate and p99 vs routing skew for LRU, LFU and pinned."""
    sns.set_theme(style="whitegrid", context="notebook")
    platforms = list(dict.fromkeys(table["platform"]))
    fig, axes = plt.subplots(2, len(platforms), figsize=(5.5 * len(platforms), 6.5), squeeze=False, sharex=True)
    for j, platform in enumerate(platforms):
        t = table[table.platform == platform]
        for policy, g in t.groupby("policy", sort=False):
            axes[0][j].plot(g.zipf, g.hbm_hit_rate, marker="o", lw=2, label=policy)
            axes[1][j].plot(g.zipf, g.p99_s, marker="o", lw=2, label=policy)
        n, rate = int(t.experts.iloc[0]), t.offered_rps.iloc[0]
        axes[0][j].set_title(f"{PLATFORM_LABELS.get(platform, platform)}\n{n} experts, {rate:g} requests/s", fontsize=10)
        axes[0][j].set_ylabel("HBM hit rate (expert batches)")
        axes[1][j].set_ylabel("p99 latency (s)")
        axes[1][j].set_yscale("log")
        axes[1][j].set_xlabel("Zipf skew of expert popularity")
        axes[0][j].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, outputs)


def plot_serving_cost(table: pd.DataFrame, outputs: list[str]) -> None:
    """Nodes needed to serve a target load at a p99 bound, vs experts."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    styles = ["-", "--", ":", "-."]
    for i, (platform, g) in enumerate(table.groupby("platform", sort=False)):
        ax.plot(g.experts, g.nodes, marker="os^D"[i % 4], ls=styles[i % 4], lw=2,
                label=PLATFORM_LABELS.get(platform, platform), color=PLATFORM_COLORS.get(platform))
        ax.plot(g.experts, g.capacity_nodes, ls="", marker="_", ms=14, color=PLATFORM_COLORS.get(platform))
    r = table.iloc[0]
    ax.set_xscale("log")
    ax.set_xlabel("Llama-2-7B experts")
    ax.set_ylabel("nodes needed (bars: nodes to hold the experts)")
    ax.set_title(f"Nodes to serve {r.target_rps:g} requests/s with p99 under {r.p99_bound_s:g} s (Zipf-skewed routing)",
                 fontsize=10)
    ax.legend(fontsize=9)
    _save(fig, outputs)


def plot_sweep(table: pd.DataFrame, outputs: list[str]) -> None:
    """Heatmaps of the design-space sweep: median speedup over DGX H100 by pairs of hardware axes."""
    sns.set_theme(style="white", context="notebook")
    t = table[table.sn40l_fits & table.dgx_fits]
    pairs = [("hbm_bandwidth_GBps", "ddr_to_hbm_GBps"), ("host_link_GBps", "ddr_to_hbm_GBps"),
             ("experts", "batch")]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2))
    for ax, (x, y) in zip(axes, pairs):
        grid = t.groupby([y, x])["speedup"].median().unstack(x).sort_index(ascending=False)
        sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", cmap="viridis", annot_kws={"fontsize": 7}, cbar=False)
        ax.tick_params(axis="y", rotation=0)
        ax.set_title(f"median speedup by {y} x {x}", fontsize=9)
    fig.suptitle(f"Design-space sweep: SN40L node over DGX H100 ({len(t)} points where both fit)", fontsize=11)
    fig.tight_layout()
    _save(fig, outputs)
