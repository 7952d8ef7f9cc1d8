"""Figures of the report. Each function takes the table a pipeline stage wrote and saves PNG and SVG.

Figures that reproduce one of the article's draw its values as reference marks (grey or black, hollow
markers and dashed lines, labelled "article"); the values come from ``rdusim/data/paper_claims.yaml``
through :func:`rdusim.report.validation.paper_value`, never from this module. Saved SVGs are
byte-identical from run to run (fixed ``svg.hashsalt``, no date in the metadata).
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from rdusim.report.figstyle import axis_name, figure_title, label_overlaps, mark_cell, small_fonts  # noqa: E402
from rdusim.report.validation import paper_value  # noqa: E402

PLATFORM_COLORS = {"sn40l-node": "#4c72b0", "dgx-a100": "#dd8452", "dgx-h100": "#55a868", "dgx-h200": "#c44e52"}
PLATFORM_LABELS = {
    "sn40l-node": "SN40L Node (8 sockets)",
    "dgx-a100": "DGX A100 (8x A100 80 GB)",
    "dgx-h100": "DGX H100 (8x H100 80 GB)",
    "dgx-h200": "DGX H200 (8x H200 141 GB)",
    "gh200-x8": "8x GH200 (96 GB HBM3 + 480 GB LPDDR5X each)",
}


REF_COLOR = "#333333"  # the article's values
SVG_SALT = "rdusim"    # fixed ids in SVG output, so that a rerun writes the same bytes


def _save(fig, outputs: list[str]) -> None:
    """Write ``fig`` to each output; first print one line per overlapping or too small label (the
    pipeline test fails on them, :mod:`rdusim.report.figstyle`)."""
    name = Path(outputs[0]).stem if outputs else "figure"
    for problem in label_overlaps(fig):  # draws the figure once
        print(f"rdusim: figure {name}: labels overlap: {problem}", file=sys.stderr)
    for problem in small_fonts(fig):
        print(f"rdusim: figure {name}: label too small: {problem}", file=sys.stderr)
    # The tight box of that drawing serves every format: "tight" in savefig would draw the figure once
    # more per file just to find it (a third of a figure job's time).
    tight = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    for out in outputs:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        svg = out.endswith(".svg")
        with plt.rc_context({"svg.hashsalt": SVG_SALT}):
            fig.savefig(out, dpi=150, bbox_inches=tight, metadata={"Date": None} if svg else None)
    plt.close(fig)


def _log_ticks(axis, subs=(1.0, 2.0, 5.0)) -> None:
    """Label a log axis at 1, 2, 5 x 10^k as plain numbers, so values between decades can be read."""
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(1, 10)))
    axis.set_minor_formatter(NullFormatter())


def _paper(claim_id: str):
    """The article's value of a claim as a float (None when the claims file lacks it)."""
    value = paper_value(claim_id)
    return None if value is None or isinstance(value, list) else float(value)


def plot_footprint(table: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 8: nodes needed to serve N experts at TP8 latency, per platform.

    Platforms with identical capacity (DGX A100 and DGX H100 both have 640 GB of HBM) overlap; they
    are drawn with different line styles so both stay visible. Reference marks: the article's 850
    experts on one SN40L node and the 19 DGX nodes it says hold them in HBM.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(8, 4.8))
    styles = ["-", "--", ":", "-."]
    for i, (platform, group) in enumerate(table.groupby("platform", sort=False)):
        per_node = int(group["experts_per_node_full_speed"].iloc[0])
        ax.step(group["experts"], group["nodes"], where="post", lw=2.2, ls=styles[i % len(styles)],
                color=PLATFORM_COLORS.get(platform),
                label=f"{PLATFORM_LABELS.get(platform, platform)}: {per_node} experts/node")
    sn40l_experts, dgx_nodes = _paper("sn40l_node_max_experts"), _paper("dgx_nodes_for_sn40l_node")
    if sn40l_experts is not None and sn40l_experts <= table["experts"].max():
        ax.axvline(sn40l_experts, color=REF_COLOR, ls="--", lw=1)
        ax.scatter([sn40l_experts], [1], s=90, marker="D", facecolors="none", edgecolors=REF_COLOR, lw=1.5, zorder=6,
                   label=f"article: one SN40L node serves {sn40l_experts:.0f} experts")
        if dgx_nodes is not None:
            ax.scatter([sn40l_experts], [dgx_nodes], s=110, marker="o", facecolors="none", edgecolors=REF_COLOR,
                       lw=1.5, zorder=6, label=f"article: {dgx_nodes:.0f} DGX nodes hold them in HBM")
    ax.set_xlim(0, table["experts"].max())
    ax.set_ylim(0, None)
    ax.set_xlabel("Llama-2-7B experts in the CoE (BF16, 13.5 GB each)")
    ax.set_ylabel("nodes needed at full speed")
    ax.set_title("(SN40L: HBM + DDR; DGX: HBM only, less router and KV cache)", fontsize=10)
    figure_title(fig, "Fig. 8", "system footprint to serve N experts at TP8 latency")
    ax.legend(frameon=True, fontsize=8.5, loc="upper left")
    _save(fig, outputs)


def plot_roofline(intensity: pd.DataFrame, rooflines: pd.DataFrame, pipeline: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 3: the Monarch FFT's three fusion levels on SN40L and A100 rooflines, and the
    fully fused pipeline's PCUs and PMUs per stage (Fig. 3b). Hollow marks: the article's intensities
    and its A100 ridge point."""

    sns.set_theme(style="whitegrid", context="notebook")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.5, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    x = np.logspace(0, 4, 200)
    for row in rooflines.itertuples():
        roof = np.minimum(row.peak_flops, x * row.hbm_bandwidth) / 1e12
        line, = ax.plot(x, roof, lw=2, label=f"{row.platform} roofline (ridge {row.ridge_ops_per_byte:.0f} FLOP/B)")
        ax.axvline(row.ridge_ops_per_byte, color=line.get_color(), ls=":", lw=1)
    labels = {"no_fusion": "no fusion", "gemm0_mul_transpose": "Gemm0+Mul+Transpose fused",
              "fully_fused": "fully fused (streaming)"}
    claim_ids = {"no_fusion": "fig3_oi_no_fusion", "gemm0_mul_transpose": "fig3_oi_gemm0_mul_transpose",
                 "fully_fused": "fig3_oi_fully_fused"}
    markers = ["o", "s", "D"]
    sn = rooflines.iloc[0]
    ref_label = "article's intensity (same roofline)"
    for (row, marker) in zip(intensity.itertuples(), markers):
        y = min(sn.peak_flops, row.ops_per_byte * sn.hbm_bandwidth) / 1e12
        ax.scatter(row.ops_per_byte, y, s=80, marker=marker, zorder=5, color="black")
        ref = _paper(claim_ids.get(row.variant, ""))
        text = f"{labels.get(row.variant, row.variant)}\n{row.ops_per_byte:.1f} FLOP/B"
        if ref is not None:
            y_ref = min(sn.peak_flops, ref * sn.hbm_bandwidth) / 1e12
            ax.scatter(ref, y_ref, s=190, marker=marker, zorder=4, facecolors="none", edgecolors=REF_COLOR, lw=1.2,
                       label=ref_label)
            ref_label = None
            text += f" (article {ref:g})"
        # below-right of its point; past the ridge points (on the flat roof) above-left, in the headroom
        past = row.ops_per_byte > rooflines.ridge_ops_per_byte.max()
        ax.annotate(text, (row.ops_per_byte, y), textcoords="offset points", xytext=(-14, 16) if past else (8, -28),
                    ha="right" if past else "left", va="bottom" if past else "baseline", fontsize=8)
    a100_ridge = _paper("fig3_a100_ridge")
    a100 = rooflines[rooflines.platform.str.startswith("a100")]
    if a100_ridge is not None and len(a100):
        ax.scatter(a100_ridge, a100.peak_flops.iloc[0] / 1e12, s=110, marker="v", facecolors="none",
                   edgecolors=REF_COLOR, lw=1.2, zorder=6, label=f"article: A100 ridge {a100_ridge:g} FLOP/B")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=rooflines.peak_flops.max() / 1e12 * 8)
    ax.set_xlabel("operational intensity (FLOP per off-chip byte)")
    ax.set_ylabel("attainable TFLOP/s (BF16)")
    ax.set_title("Monarch FFT (Fig. 3a) on the roofline", fontsize=11)
    ax.legend(fontsize=8, loc="lower right")
    pos = np.arange(len(pipeline))
    pmus = pipeline["buffer_pmus"] + pipeline["weight_pmus"]
    for offset, values, label in ((-0.2, pipeline["pcus"], "PCUs (compute)"), (0.2, pmus, "PMUs (buffers, constants)")):
        bars = bx.bar(pos + offset, values.clip(lower=0.5), width=0.4, label=label)
        bx.bar_label(bars, labels=[f"{int(v)}" for v in values], fontsize=9, padding=2)
    bx.set_xticks(pos, pipeline["stage"])
    bx.set_yscale("log")
    bx.set_ylim(0.5, max(pipeline["pcus"].max(), pmus.max()) * 4)
    bx.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    bx.set_ylabel("units allotted (log scale)")
    bx.set_title("Fully fused pipeline (Fig. 3b): units per stage\n(transpose = buffer access pattern, 0 PCUs)",
                 fontsize=10)
    bx.legend(fontsize=8, loc="upper center")
    figure_title(fig, "Fig. 3", "the Monarch FFT's operational intensity and its fused pipeline")
    fig.tight_layout()
    _save(fig, outputs)


def plot_fusion(table: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 6: speedup over unfused of fused-SO and fused-HO per benchmark and phase (log).

    Reference marks: the article's 1.5x to 3x band for prefill, training and sparseGPT, and its
    largest speedup (13x: FlashFFTConv, and the top of its 1x to 13x decode range).
    """
    sns.set_theme(style="whitegrid", context="notebook")
    t = table[table["fits"]].copy()
    t["run"] = t["benchmark"] + " " + (t["seq_len"] // 1024).astype(str) + "K " + t["phase"]
    long = t.melt(id_vars="run", value_vars=["speedup_so", "speedup_ho"], var_name="mode", value_name="speedup")
    long["mode"] = long["mode"].map({"speedup_so": "fused + SO", "speedup_ho": "fused + HO"})
    fig, ax = plt.subplots(figsize=(13, 5))
    band = paper_value("fig6_prefill_train_speedup_range")
    if isinstance(band, list):
        ax.axhspan(band[0], band[1], color="#999999", alpha=0.18, lw=0,
                   label=f"article: prefill, training, sparseGPT {band[0]:g}x to {band[1]:g}x")
    top = _paper("fig6_fftconv_speedup")
    decode = paper_value("fig6_decode_speedup_range")
    if top is not None:
        ax.axhline(top, color=REF_COLOR, ls="--", lw=1.2,
                   label=f"article: largest speedup {top:g}x (FlashFFTConv; top of decode's "
                         f"{decode[0]:g}x to {decode[1]:g}x)" if isinstance(decode, list) else f"article: {top:g}x")
    sns.barplot(data=long, x="run", y="speedup", hue="mode", ax=ax)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log")
    ax.set_ylim(0.8, max(long["speedup"].max(), top or 0) * 2.5)
    _log_ticks(ax.yaxis)
    ax.set_ylabel("speedup over unfused (8 sockets; FlashFFTConv 1)")
    ax.set_xlabel("")
    figure_title(fig, "Fig. 6", "operator fusion on the SN40L, speedup over unfused")
    ax.tick_params(axis="x", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    ax.legend(title="", loc="upper left", fontsize=8.5, ncol=2)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.1f", fontsize=7, padding=1)
    _save(fig, outputs)


def plot_gpu_calibration(table: pd.DataFrame, outputs: list[str]) -> None:
    """Measured vs predicted GPU times: fitted points, held-out checks and unseen engines and GPUs."""

    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(13, 6.5))
    lo = min(table.measured_ms.min(), table.predicted_ms.min()) * 0.7
    hi = max(table.measured_ms.max(), table.predicted_ms.max()) * 1.4
    x = np.array([lo, hi])
    ax.plot(x, x, color="black", lw=1)
    ax.fill_between(x, x * 0.9, x * 1.1, color="green", alpha=0.12, label="within 10%")
    ax.fill_between(x, x * 0.75, x * 1.25, color="orange", alpha=0.08, label="within 25%")
    labels = {"fit": "fitted: H100 (PyTorch)", "holdout_mistral": "held out: Mistral-7B (fit on Llama-2-7B)",
              "holdout_bs8": "held out: batch 8 (fit on batch 1)", "fit_engine": "fitted: LMDeploy A100 batch 1",
              "unseen_lmdeploy_batch": "unseen: LMDeploy A100 batch 16-64",
              "unseen_trtllm": "unseen: TensorRT-LLM A100 first token",
              "fit_engine_nemo": "fitted: NeMo TensorRT-LLM DGX H100, TP 1-8 (engine work)",
              "unseen_nemo_a100": "unseen: NeMo TensorRT-LLM DGX A100, TP 1-8"}
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
    figure_title(fig, "", "GPU model, measured vs predicted\n(kernel = fixed part + max(FLOPs / GEMM rate, "
                 "bytes / streaming rate))", size=10.5)
    ax.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
              title="split, mode (|error|)", title_fontsize=8.5)
    fig.tight_layout()
    _save(fig, outputs)


def plot_engine_nemo(table: pd.DataFrame, outputs: list[str]) -> None:
    """Request latency against TP: the engine model (lines) and NeMo's published latencies (points),
    DGX A100 (predicted) and DGX H100 (fitted), one line per batch size."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    colors = dict(zip(sorted(table.batch.unique()), sns.color_palette("viridis", table.batch.nunique())))
    for ax, (platform, g) in zip(axes, table.groupby("platform", sort=True)):
        basis = g.basis.iloc[0]
        err = g.rel_err.abs()
        for batch, b in g.groupby("batch"):
            b = b.sort_values("tp")
            ax.plot(b.tp, b.predicted_ms, color=colors[batch], lw=1.8, label=f"model, batch {batch}")
            ax.scatter(b.tp, b.published_ms, color=colors[batch], edgecolor="black", zorder=3, s=36,
                       label=f"published, batch {batch}")
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8], labels=["1", "2", "4", "8"])
        ax.set_xlabel("tensor-parallel GPUs")
        ax.set_title(f"{PLATFORM_LABELS.get(platform, platform)}\n({basis}; median |error| {err.median():.0%}, "
                     f"max {err.max():.0%})", fontsize=9)
    axes[0].set_ylabel("latency of one request batch (ms)\n128 in, 20 out, Llama-2-7B")
    axes[0].set_ylim(bottom=0)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, fontsize=7.5, ncol=2, loc="upper right")
    figure_title(fig, "", "GPU engine model vs NeMo's published TensorRT-LLM latencies (article ref. [10])", size=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    _save(fig, outputs)


def plot_breakdown(table: pd.DataFrame, outputs: list[str]) -> None:
    """Article Fig. 2: switching vs execution time for one non-resident Llama-2-7B expert, 20 tokens.

    Reference marks: where each DGX bar would end if its switching took the article's multiple of the
    SN40L node's (31x for the DGX A100, 15x for the DGX H100, Table 2).
    """
    sns.set_theme(style="whitegrid", context="notebook")
    profiles = list(dict.fromkeys(table["profile"]))
    batches = sorted(table["batch"].unique(), reverse=True)
    ratios = {"dgx-a100": _paper("table2_switching_a100"), "dgx-h100": _paper("table2_switching_h100")}
    fig, axes = plt.subplots(len(profiles), len(batches), figsize=(5.8 * len(batches), 3.5 * len(profiles)),
                             squeeze=False, sharey="row")
    for i, profile in enumerate(profiles):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            t = table[(table.profile == profile) & (table.batch == batch)]
            labels = [PLATFORM_LABELS.get(p, p).split(" (")[0] for p in t.platform]
            ax.barh(labels, t.execution_ms, label="execution (20 tokens)", color="#4c72b0")
            ax.barh(labels, t.switching_ms, left=t.execution_ms, label="model switching (copy one expert)",
                    color="#dd8452")
            rdu = t[t.platform.str.startswith("sn40l")]
            right = t.total_ms.max()
            ref_label = "article: DGX switching " + " / ".join(
                f"{v:g}x ({k.split('-')[1].upper()})" for k, v in ratios.items() if v is not None) + " the SN40L's"
            for y, r in enumerate(t.itertuples()):
                ax.text(r.total_ms, y, f" {r.total_ms:.0f} ms", va="center", fontsize=8)
                ratio = ratios.get(r.platform)
                if ratio is not None and len(rdu):
                    end = r.execution_ms + ratio * rdu.switching_ms.iloc[0]
                    right = max(right, end)
                    ax.plot([end, end], [y - 0.42, y + 0.42], color=REF_COLOR, lw=2.2, ls="-", label=ref_label)
                    ref_label = None
                    ax.text(end, y + 0.42, f"{r.switching_ms / rdu.switching_ms.iloc[0]:.1f}x (article {ratio:g}x)",
                            fontsize=7, ha="right", va="bottom", color=REF_COLOR)
            ax.set_xlim(0, right * 1.25)
            ax.invert_yaxis()
            ax.set_title(f"BS={batch}, TP=8 ({profile} profile)", fontsize=10)
            ax.set_xlabel("ms")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8.5, bbox_to_anchor=(0.5, -0.01))
    figure_title(fig, "Fig. 2", "switching vs execution for one Llama-2-7B expert\n"
                 "(text over a DGX bar: its switching time over the SN40L node's, and the article's)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _save(fig, outputs)


def plot_latency_vs_experts(table: pd.DataFrame, outputs: list[str], profile: str = "paper") -> None:
    """Article Fig. 7: expected CoE latency vs number of experts, one panel per batch size (columns)
    and output length (rows); OOM marked once per expert count.

    Reference marks: the article's DGX spill (about 50 experts) and OOM (150), and hollow marks where
    its Table 2 speedups put each DGX relative to the SN40L curve (overall speedup at the Table 2
    expert count; at BS 1 also the expert speedup under 50 experts), their values in the legend.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    t = table[table.profile == profile]
    batches = sorted(t["batch"].unique(), reverse=True)
    gens = sorted(t["gen"].unique())
    fig, axes = plt.subplots(len(gens), len(batches), figsize=(6.8 * len(batches), 4.3 * len(gens)), squeeze=False)
    spill, oom = _paper("dgx_spill_experts"), _paper("dgx_oom_experts")
    dgx_limit = t[t.platform.isin(["dgx-a100", "dgx-h100"])].max_experts
    table2_n = int(dgx_limit.min()) if len(dgx_limit) else None
    for row, gen in enumerate(gens):
        for ax, batch in zip(axes[row], batches):
            sub = t[(t.batch == batch) & (t.gen == gen)]
            ooms: dict[int, list[str]] = {}
            for platform, g in sub.groupby("platform", sort=False):
                ok = g[g.fits]
                color = PLATFORM_COLORS.get(platform)
                ax.plot(ok.experts, ok.total_ms / 1e3, lw=2, label=PLATFORM_LABELS.get(platform, platform), color=color)
                if (~g.fits).any() and len(ok):
                    last = ok.iloc[-1]
                    ax.scatter([last.experts], [last.total_ms / 1e3], marker="X", s=90, color=color, zorder=5)
                    ooms.setdefault(int(g.max_experts.iloc[0]), []).append(PLATFORM_LABELS.get(platform, platform)
                                                                           .split(" (")[0].replace("DGX ", ""))
            for k, x in enumerate(x for x in (spill, oom) if x is not None):
                ax.axvline(x, color=REF_COLOR, ls="--", lw=1, alpha=0.7,
                           label=("article: DGX spill at ~{:g}, OOM at {:g} experts".format(spill, oom)
                                  if spill is not None and oom is not None else "article") if k == 0 else None)
            rdu = sub[sub.platform.str.startswith("sn40l") & sub.fits].set_index("experts").total_ms
            marks = [("overall", table2_n)] + ([("expert", 10)] if batch == 1 else [])
            for kind, n in marks:
                if n is None or n not in rdu.index:
                    continue
                for base in ("a100", "h100"):
                    ratio = _paper(f"table2_{kind}_bs{batch}_{gen}tok_{base}")
                    if ratio is None:
                        continue
                    ax.scatter([n], [rdu[n] * ratio / 1e3], s=120, marker="o" if kind == "overall" else "s",
                               facecolors="none", lw=1.8, edgecolors=PLATFORM_COLORS[f"dgx-{base}"], zorder=6,
                               label=f"article: {ratio:g}x the SN40L ({kind}, {base.upper()}, {n} experts)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            _log_ticks(ax.xaxis)
            _log_ticks(ax.yaxis, subs=(1.0, 2.0, 3.0, 5.0))
            ax.set_xlabel("Llama-2-7B experts in the CoE")
            ax.set_ylabel("expected latency per batch (s)")
            ax.set_title(f"BS={batch}, TP=8, {gen} output tokens", fontsize=10)
            handles, labels = ax.get_legend_handles_labels()
            own = [(h, lab) for h, lab in zip(handles, labels) if lab.startswith("article: ") and "x the SN40L" in lab]
            # one box, upper left (where the curves are not, with headroom above them): the OOM counts,
            # then the article's marks
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * (lo / hi) ** -(0.12 * (len(own) + 1)))
            note = "X = OOM above: " + "; ".join(f"{'/'.join(names)} {n}" for n, names in sorted(ooms.items()))
            leg = ax.legend(*(zip(*own) if own else ([], [])), fontsize=7.5, loc="upper left", title=note,
                            title_fontsize=7.5, alignment="left")
            leg.get_frame().set_alpha(0.9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    shared = [(h, lab) for h, lab in zip(handles, labels) if "x the SN40L" not in lab]
    fig.legend(*zip(*shared), loc="lower center", ncol=3, fontsize=8.5, bbox_to_anchor=(0.5, 0.0))
    figure_title(fig, "Fig. 7", f"expected CoE latency vs experts ({profile} profile)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _save(fig, outputs)


def plot_overall_vs_experts(table: pd.DataFrame, outputs: list[str], evaluated_at: int | None = None) -> None:
    """Table 2's overall cells against the expert count, one panel per baseline, with the article's
    values as dashed reference lines (its count is not stated) and the count Table 2 uses marked."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    names = {"overall_bs8_20tok": "BS 8, 20 tok", "overall_bs1_20tok": "BS 1, 20 tok",
             "overall_bs8_200tok": "BS 8, 200 tok", "overall_bs1_200tok": "BS 1, 200 tok"}
    colors = dict(zip(names, sns.color_palette("deep", len(names))))
    at = evaluated_at or int(table.experts.max())
    for ax, (base, g) in zip(axes, table.groupby("baseline", sort=True)):
        short = base.split("-")[1]
        for metric, m in g.groupby("metric", sort=False):
            ax.plot(m.experts, m.speedup, color=colors.get(metric), lw=1.8, label=f"model, {names.get(metric, metric)}")
            ref = paper_value(f"table2_{metric}_{short}")
            if ref is not None:
                ax.axhline(float(ref), color=colors.get(metric), ls="--", lw=1.0, alpha=0.8)
        ax.axvline(at, color="black", lw=0.8, ls=":", label=f"Table 2 evaluated at {at} experts")
        ax.set_title(f"vs {PLATFORM_LABELS.get(base, base).split(' (')[0]} (dashed: article)", fontsize=10)
        ax.set_xlabel("experts in the CoE")
    axes[0].set_ylabel("SN40L node speedup (x), paper profile")
    axes[0].set_ylim(bottom=0)
    axes[1].legend(fontsize=7.5, loc="upper left")
    figure_title(fig, "Table 2", "overall speedups against the expert count (the article does not state its count)",
                 size=10.5)
    fig.tight_layout()
    _save(fig, outputs)


def plot_table2(table: pd.DataFrame, outputs: list[str]) -> None:
    """Article Table 2 as a chart: each speedup under each profile against the article's value (the
    black diamond, with the 10% band the claims allow)."""
    sns.set_theme(style="whitegrid", context="notebook")
    t = table[table.metric != "oom_150_experts"].copy()
    t["paper"] = t["paper"].astype(float)
    t["reproduced"] = t["reproduced"].astype(float)
    metrics = list(dict.fromkeys(t.metric))
    baselines = list(dict.fromkeys(t.baseline))
    profiles = list(dict.fromkeys(t.profile))
    markers = dict(zip(profiles, ["o", "s", "^", "v"]))
    colors = dict(zip(profiles, ["#4c72b0", "#dd8452", "#55a868", "#8172b3"]))
    fig, axes = plt.subplots(1, len(baselines), figsize=(6.2 * len(baselines), 0.5 * len(metrics) + 1.6),
                             squeeze=False, sharey=True)
    names = {"overall_bs8_20tok": "overall, BS 8, 20 tok", "overall_bs1_20tok": "overall, BS 1, 20 tok",
             "expert_bs1_20tok": "expert, BS 1, 20 tok", "overall_bs8_200tok": "overall, BS 8, 200 tok",
             "overall_bs1_200tok": "overall, BS 1, 200 tok", "expert_bs1_200tok": "expert, BS 1, 200 tok",
             "model_switching": "model switching"}
    for ax, base in zip(axes[0], baselines):
        b = t[t.baseline == base]
        for y, metric in enumerate(metrics):
            m = b[b.metric == metric]
            if not len(m):
                continue
            ref = m.paper.iloc[0]
            ax.plot([ref * 0.9, ref * 1.1], [y, y], color="#999999", lw=7, alpha=0.45, solid_capstyle="butt",
                    label="article \u00b110%" if y == 0 else None)
            ax.scatter([ref], [y], marker="D", s=60, color="black", zorder=5, label="article" if y == 0 else None)
            for k, profile in enumerate(profiles):
                r = m[m.profile == profile]
                if len(r):
                    v = r.reproduced.iloc[0]
                    ax.scatter([v], [y + 0.18 * (k - (len(profiles) - 1) / 2)], marker=markers[profile], s=45,
                               color=colors[profile], zorder=6, label=f"{profile} profile" if y == 0 else None)
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)
        ax.set_yticks(range(len(metrics)), [names.get(m, m) for m in metrics])
        ax.set_ylim(len(metrics) - 0.5, -0.5)
        ax.set_xlabel("SN40L node speedup (x)")
        ax.set_title(f"vs {PLATFORM_LABELS.get(base, base).split(' (')[0]}", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8.5, bbox_to_anchor=(0.5, -0.01))
    figure_title(fig, "Table 2", f"SN40L node speedups reproduced ({int(t.experts.iloc[0])} experts) against the article")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    _save(fig, outputs)


def plot_sensitivity(table: pd.DataFrame, outputs: list[str], default: dict | None = None) -> None:
    """Overall BS 8 speedup over each GPU system vs its host-to-HBM rate and the SN40L's DDR-to-HBM rate,
    one row of panels per GPU system and one panel per expert count; a diverging colour scale on the log of
    the speedup, centred on 1.5x (cells under it marked *), shared by every panel, with one colour bar.
    ``default`` ({gpu: {host_link_GBps, ddr_to_hbm_node_GBps, experts}}:
    :func:`rdusim.report.coe_tables.sensitivity_default`) is outlined: the shipped platforms' cell."""
    sns.set_theme(style="white", context="notebook")
    gpus = list(dict.fromkeys(table["gpu"]))
    counts = sorted(table["experts"].unique())
    fig, axes = plt.subplots(len(gpus), len(counts), figsize=(4.8 * len(counts) + 1.0, 4.8 * len(gpus)), squeeze=False)
    values = table["speedup_vs_gpu"]
    threshold = 1.5
    lo, hi = min(values.min(), threshold / 1.2), max(values.max(), threshold * 1.2)
    norm = TwoSlopeNorm(vcenter=np.log(threshold), vmin=np.log(lo), vmax=np.log(hi))
    marked = []
    for row_axes, gpu in zip(axes, gpus):
        label = PLATFORM_LABELS.get(gpu, gpu).split(" (")[0]
        cell = (default or {}).get(gpu, {})
        for ax, n in zip(row_axes, counts):
            part = table[(table.gpu == gpu) & (table.experts == n)]
            if part.empty:  # more experts than this system holds
                ax.axis("off")
                ax.text(0.5, 0.5, f"{label}:\n{n} experts do not fit", ha="center", va="center", fontsize=10,
                        transform=ax.transAxes)
                continue
            grid = part.pivot(index="ddr_to_hbm_node_GBps", columns="host_link_GBps",
                              values="speedup_vs_gpu").sort_index(ascending=False)
            annot = grid.map(lambda v: f"{v:.1f}" + ("*" if v < threshold else ""))
            sns.heatmap(np.log(grid), ax=ax, annot=annot, fmt="", cmap="RdBu", norm=norm, cbar=False,
                        annot_kws={"fontsize": 8.5}, linewidths=0.3, linecolor="white")
            if cell.get("experts") == n:
                row, col = cell["ddr_to_hbm_node_GBps"], cell["host_link_GBps"]
                if mark_cell(ax, grid, row, col):
                    marked.append(f"{label} {col:g} GB/s: {grid.loc[row, col]:.2f}x")
            ax.set_title(f"vs {label}, {n} experts", fontsize=10)
            ax.tick_params(axis="y", rotation=0)
            ax.set_xlabel(f"{label} host-to-HBM, node (GB/s)")
            ax.set_ylabel(axis_name("ddr_to_hbm_node_GBps") if ax is row_axes[0] else "")
    note = ("; outlined: the shipped platforms at Table 2's expert count (" + ", ".join(marked) + ")") if marked else ""
    vs = " and ".join(PLATFORM_LABELS.get(g, g).split(" (")[0] for g in gpus)
    figure_title(fig, "Table 2", f"sensitivity of the SN40L node's BS 8, 20-token speedup over {vs}\n"
                 f"(* = under 1.5x; red under, blue over{note})", size=10.5)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    cax = fig.add_axes((0.94, 0.18, 0.012, 0.6))
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="RdBu"), cax=cax)
    ticks = [v for v in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0) if lo <= v <= hi]
    bar.set_ticks(np.log(ticks), labels=[f"{v:g}x" for v in ticks])
    bar.set_label("speedup (log scale)")
    bar.ax.axhline(np.log(threshold), color="black", lw=1.2)
    _save(fig, outputs)


def _saturated(g: pd.DataFrame) -> pd.Series:
    """Points where the node could not keep up: fewer requests served per second than offered, or
    the server busy 95% of the time or more."""
    return (g.throughput_rps < g.offered_rps) | (g.utilisation >= 0.95)


def plot_serving_load(table: pd.DataFrame, outputs: list[str]) -> None:
    """p99 latency vs offered load, one panel per routing skew, one line per platform and expert
    count; saturated points ringed in red; platforms out of memory noted."""
    sns.set_theme(style="whitegrid", context="notebook")
    skews = sorted(table["zipf"].unique())
    experts = sorted(table["experts"].unique())
    styles = dict(zip(experts, ["-", "--", ":", "-."] * 3))
    marks = dict(zip(experts, ["o", "s", "^", "D"] * 3))
    fig, axes = plt.subplots(1, len(skews), figsize=(6.6 * len(skews), 4.8), squeeze=False, sharey=True)
    for ax, skew in zip(axes[0], skews):
        t = table[table.zipf == skew]
        oom = {}
        sat_label = "saturated (served < offered, or busy >= 95%)"
        for (platform, n), g in t.groupby(["platform", "experts"], sort=False):
            if not g.fits.any():
                oom.setdefault(PLATFORM_LABELS.get(platform, platform).split(" (")[0], []).append(str(n))
                continue
            g = g[g.fits]
            ax.plot(g.offered_rps, g.p99_s, marker=marks[n], ls=styles[n], lw=1.8, ms=5,
                    color=PLATFORM_COLORS.get(platform),
                    label=f"{PLATFORM_LABELS.get(platform, platform).split(' (')[0]}, {n} experts")
            sat = g[_saturated(g)]
            if len(sat):
                ax.scatter(sat.offered_rps, sat.p99_s, s=160, facecolors="none", edgecolors="red", lw=1.6, zorder=6,
                           label=sat_label)
                sat_label = None
        if oom:
            ax.text(0.03, 0.97, "out of memory: " + "; ".join(f"{p} at {', '.join(ns)} experts" for p, ns in oom.items()),
                    transform=ax.transAxes, fontsize=8, va="top")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_ticks(ax.xaxis)
        _log_ticks(ax.yaxis)
        ax.yaxis.set_tick_params(which="both", labelleft=True)
        ax.set_title(f"Zipf skew {skew:g}", fontsize=10)
        ax.set_xlabel("offered load (requests/s)")
    axes[0][0].set_ylabel("p99 latency (s)")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8.5, bbox_to_anchor=(0.5, -0.02))
    figure_title(fig, "", "CoE serving, p99 latency vs offered load (20 tokens, batches up to 8, LRU HBM cache)")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    _save(fig, outputs)


def plot_serving_policies(table: pd.DataFrame, outputs: list[str]) -> None:
    """HBM hit rate and p99 vs routing skew for LRU, LFU and pinned (linear axes)."""
    sns.set_theme(style="whitegrid", context="notebook")
    platforms = list(dict.fromkeys(table["platform"]))
    fig, axes = plt.subplots(2, len(platforms), figsize=(5.5 * len(platforms), 6.5), squeeze=False, sharex=True)
    for j, platform in enumerate(platforms):
        t = table[table.platform == platform]
        for policy, g in t.groupby("policy", sort=False):
            axes[0][j].plot(g.zipf, g.hbm_hit_rate, marker="o", lw=2, label=policy)
            axes[1][j].plot(g.zipf, g.p99_s * 1e3, marker="o", lw=2, label=policy)
        n, rate = int(t.experts.iloc[0]), t.offered_rps.iloc[0]
        axes[0][j].set_title(f"{PLATFORM_LABELS.get(platform, platform)}\n{n} experts, {rate:g} requests/s", fontsize=10)
        axes[0][j].set_ylabel("HBM hit rate (expert batches)")
        axes[0][j].set_ylim(0, 1.02)
        axes[1][j].set_ylabel("p99 latency (ms)")
        axes[1][j].set_ylim(0, t.p99_s.max() * 1e3 * 1.1)
        axes[1][j].set_xlabel("Zipf skew of expert popularity")
        axes[0][j].legend(fontsize=8)
    figure_title(fig, "", "HBM expert cache policies against routing skew")
    fig.tight_layout()
    _save(fig, outputs)


def plot_serving_cost(table: pd.DataFrame, outputs: list[str]) -> None:
    """Nodes needed to serve a target load at a p99 bound, per expert count and platform (grouped bars),
    and inside each bar the nodes needed only to hold the experts (hatched). Not Fig. 8's count: there
    a DGX holds every expert in HBM; here experts may sit in host DRAM and the load decides."""
    sns.set_theme(style="whitegrid", context="notebook")
    experts = sorted(table["experts"].unique())
    platforms = list(dict.fromkeys(table["platform"]))
    fig, ax = plt.subplots(figsize=(9.5, 5.0))
    width = 0.8 / len(platforms)
    pos = np.arange(len(experts))
    for i, platform in enumerate(platforms):
        g = table[table.platform == platform].set_index("experts").reindex(experts)
        x = pos + (i - (len(platforms) - 1) / 2) * width
        color = PLATFORM_COLORS.get(platform)
        bars = ax.bar(x, g.nodes, width=width * 0.92, color=color, label=PLATFORM_LABELS.get(platform, platform))
        ax.bar(x, g.capacity_nodes, width=width * 0.92, facecolor="none", edgecolor="white", hatch="///", lw=0)
        ax.bar_label(bars, labels=[f"{v:g}" if np.isfinite(v) else "" for v in g.nodes], fontsize=8, padding=1)
    r = table.iloc[0]
    ax.set_xticks(pos, [f"{n:g}" for n in experts])
    ax.set_xlabel("Llama-2-7B experts")
    ax.set_ylabel("nodes needed")
    ax.set_ylim(0, table.nodes.max() * 1.5)
    ax.set_title(f"{r.target_rps:g} requests/s with p99 under {r.p99_bound_s:g} s, Zipf-skewed routing. Not Fig. 8's "
                 "count: a DGX here also keeps\nexperts in host DRAM and copies them in on demand; nodes are added "
                 "until the p99 bound is met", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="#888888", edgecolor="white", hatch="///", lw=0))
    labels.append("hatched: nodes just to hold the experts")
    ax.legend(handles, labels, fontsize=8.5, loc="upper left", ncol=2)
    figure_title(fig, "", "nodes to serve a target load")
    fig.tight_layout()
    _save(fig, outputs)


def plot_sweep(table: pd.DataFrame, outputs: list[str], default: dict | None = None) -> None:
    """Heatmaps of the design-space sweep: median speedup over DGX H100 by pairs of hardware axes, on
    one shared colour scale with one colour bar. ``default`` (:func:`rdusim.scenarios.sweep.default_point`)
    outlines the cell of the shipped platforms in each panel that has it."""
    sns.set_theme(style="white", context="notebook")
    t = table[table.sn40l_fits & table.dgx_fits]
    pairs = [("hbm_bandwidth_GBps", "ddr_to_hbm_GBps"), ("host_link_GBps", "ddr_to_hbm_GBps"),
             ("experts", "batch")]
    grids = [t.groupby([y, x])["speedup"].median().unstack(x).sort_index(ascending=False) for x, y in pairs]
    vmin = min(float(np.nanmin(g.to_numpy())) for g in grids)
    vmax = max(float(np.nanmax(g.to_numpy())) for g in grids)
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.6 * len(pairs) + 1.0, 4.8))
    any_marked = False
    for ax, (x, y), grid in zip(axes, pairs, grids):
        sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", cmap="viridis", vmin=vmin, vmax=vmax,
                    annot_kws={"fontsize": 8.5}, cbar=False)
        ax.set_xticks(ax.get_xticks(), [f"{v:g}" for v in grid.columns])
        ax.set_yticks(ax.get_yticks(), [f"{v:g}" for v in grid.index])
        ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel(axis_name(x))
        ax.set_ylabel(axis_name(y))
        if default and x in default and y in default:
            any_marked |= mark_cell(ax, grid, default[y], default[x])
        ax.set_title("median over the other axes", fontsize=9)
    note = "; outlined: the shipped platforms' values" if any_marked else ""
    figure_title(fig, "", f"design-space sweep, SN40L node over DGX H100 ({len(t):,} points where both fit{note})",
                 size=10.5)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    cax = fig.add_axes((0.94, 0.18, 0.012, 0.6))
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(vmin, vmax), cmap="viridis"), cax=cax)
    bar.set_label("median speedup (x)")
    _save(fig, outputs)
