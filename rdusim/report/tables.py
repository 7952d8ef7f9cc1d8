"""The result tables as functions of the pipeline configuration (the pandas API of the pipeline).

Each function takes the parsed ``config/config.yaml`` and returns the table that the pipeline writes
under ``results/``. Pipeline scripts and the golden-number tests call the same functions.
"""
from __future__ import annotations

import pandas as pd

from benchmarks.fusion_suite import fusion_runs
from benchmarks.monarch import monarch_fft_graph
from benchmarks.table1 import table1_frame
from rdusim.core.platforms import load_platform
from rdusim.report.coe_tables import fig2_breakdown, table2_coe_speedups
from rdusim.report.gpu_validation import summarise, validation_table
from rdusim.report.max_throughput import summary_for_golden as max_throughput_summary_for_golden
from rdusim.report.online_serving import summary_for_golden
from rdusim.report.validation import load_claims, passes
from rdusim.scenarios.footprint import CoEDeployment, footprint_claims, footprint_frame
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.intensity import intensity_at, stage_table
from rdusim.sn40l.run import evaluate_modes


def table1_benchmarks(config: dict) -> pd.DataFrame:
    """``results/tables/table1_benchmarks.csv``: Table 1 with sizes computed from each architecture."""
    return table1_frame(list(config["benchmarks"])).convert_dtypes()


def fig8_footprint(config: dict) -> pd.DataFrame:
    """``results/tables/fig8_footprint.csv``: nodes per platform for 1..experts_max experts."""
    platforms = list(config["platforms"]["rdu"]) + list(config["platforms"]["gpu"])
    counts = list(range(1, int(config["coe"]["experts_max"]) + 1))
    return footprint_frame(platforms, counts, CoEDeployment.from_config(config["coe"])).convert_dtypes()


def claims_footprint(config: dict) -> pd.DataFrame:
    """``results/validation/parts/footprint.csv``: reproduced values of the capacity claims."""
    return footprint_claims(CoEDeployment.from_config(config["coe"]))


# Tables kept as golden data under tests/golden (name -> builder).
GOLDEN_TABLES = {
    "table1_benchmarks": table1_benchmarks,
    "fig8_footprint": fig8_footprint,
}


# ----------------------------------------------------------------------------- Figure 3
FIG3_VARIANTS = {
    "no_fusion": "unfused",
    "gemm0_mul_transpose": [["Gemm0", "Mul", "Transpose"], ["Gemm1"]],
    "fully_fused": "fused",
}


def fig3_operational_intensity(config: dict) -> pd.DataFrame:
    """``results/tables/fig3_operational_intensity.csv``: the Monarch FFT at three fusion levels."""


    chip = RduChip.from_platform(config["fusion"]["rdu_platform"])
    graph = monarch_fft_graph()
    rows = []
    for variant, groups in FIG3_VARIANTS.items():
        flops, moved, kernels = intensity_at(graph, chip, groups)
        rows.append({"variant": variant, "flops": flops, "bytes": moved, "ops_per_byte": flops / moved,
                     "kernels": kernels.n_kernels})
    return pd.DataFrame(rows)


def fig3_pipeline(config: dict) -> pd.DataFrame:
    """``results/tables/fig3_pipeline.csv``: stages of the fully fused Monarch kernel (Fig. 3b)."""


    chip = RduChip.from_platform(config["fusion"]["rdu_platform"])
    graph = monarch_fft_graph()
    _, _, kernels = intensity_at(graph, chip, "fused")
    return stage_table(graph, chip, kernels)


def fig3_rooflines(config: dict) -> pd.DataFrame:
    """Peak compute, bandwidth and ridge point of each roofline platform (drawn in Figure 3)."""

    rows = []
    for name in config["fusion"]["roofline_platforms"]:
        p = load_platform(name)
        peak, bw = p.dev("peak_bf16"), p.dev("hbm_bandwidth")
        rows.append({"platform": name, "peak_flops": peak, "hbm_bandwidth": bw, "ridge_ops_per_byte": peak / bw})
    return pd.DataFrame(rows)


def claims_fig3(config: dict) -> pd.DataFrame:
    """Reproduced values of the Figure 3 claims."""
    oi = fig3_operational_intensity(config).set_index("variant")["ops_per_byte"]
    ridge = fig3_rooflines({"fusion": {"roofline_platforms": ["a100-sxm"]}})["ridge_ops_per_byte"].iloc[0]
    shapes = "Monarch 32K FFT (256 x 128), 1024 sequences, complex FP32 intermediates"
    return pd.DataFrame([
        ("fig3_oi_no_fusion", oi["no_fusion"], shapes),
        ("fig3_oi_gemm0_mul_transpose", oi["gemm0_mul_transpose"], shapes),
        ("fig3_oi_fully_fused", oi["fully_fused"], shapes),
        ("fig3_a100_ridge", ridge, "A100 SXM datasheet: 312 BF16 TFLOPS / 2039 GB/s"),
    ], columns=["id", "reproduced", "note"])


# ----------------------------------------------------------------------------- Figure 6
def fig6_fusion(config: dict) -> pd.DataFrame:
    """``results/tables/fig6_fusion.csv``: every Table 1 run unfused, fused SO and fused HO."""


    fus = config["fusion"]
    chip = RduChip.from_platform(fus["rdu_platform"])
    rows = []
    for run in fusion_runs(list(config["benchmarks"]), dict(fus["batch"]), int(fus["tensor_parallel"])):
        res = evaluate_modes(run.graph(int(fus["fftconv_sequences"])), chip)
        u, so, ho = res["unfused"], res["fused-so"], res["fused-ho"]
        rows.append({
            "benchmark": run.benchmark, "seq_len": run.seq_len, "phase": run.phase, "batch": run.batch,
            "sockets": run.tp, "fits": ho.fits, "reason": ho.reason,
            "kernels_unfused": u.kernels, "kernels_fused": so.kernels,
            "unfused_ms": u.time_s * 1e3, "fused_so_ms": so.time_s * 1e3, "fused_ho_ms": ho.time_s * 1e3,
            "speedup_so": u.time_s / so.time_s, "speedup_ho": u.time_s / ho.time_s,
            "ho_over_so": so.time_s / ho.time_s,
            "flops": ho.flops, "hbm_bytes_unfused": u.hbm_bytes, "hbm_bytes_fused": ho.hbm_bytes,
            "ddr_bytes_fused": ho.ddr_bytes, "oi_unfused": u.operational_intensity,
            "oi_fused": ho.operational_intensity, "max_ops_per_kernel": ho.max_ops_per_kernel,
            "pcu_occupancy_ho": ho.pcu_occupancy, "pmu_occupancy_ho": ho.pmu_occupancy,
            "hbm_bw_fraction_ho": ho.hbm_bw_fraction,
        })
    return pd.DataFrame(rows)


def _range_value(values: pd.Series, low: float, high: float) -> float:
    """The value that decides a range claim: the worst one outside [low, high], else the largest."""
    below, above = values[values < low], values[values > high]
    if len(below) or len(above):
        worst_below = (low - below.min()) / low if len(below) else -1
        worst_above = (above.max() - high) / high if len(above) else -1
        return float(below.min() if worst_below > worst_above else above.max())
    return float(values.max())


# Why a Figure 6 claim fails, when it does: a physical argument naming what the article must have
# measured differently (appended to the claim's note in results/validation/claims.csv).
FIG6_GAPS = {
    "fig6_prefill_train_speedup_range": (
        "Falcon-40B's parallel attention and MLP end each layer in one all-reduce of a 2048 x 8192 tensor: "
        "unfused it runs alone (0.59 ms at the assumed 100 GB/s peer links, 37 of 120 ms), fused it streams "
        "under the layer's compute; the article's unfused run must have overlapped or sped up that collective"),
    "fig6_prefill_train_speedup_range_ho": (
        "Falcon-40B as for the SO bars; Mistral-7B 2K prefill reaches 3.1x: its 1220 unfused kernels pay "
        "25 ms of SO orchestration in 59 ms, and HO's 1.09x gain on the fused run lifts it past 3x; the article's "
        "unfused prefill must have paid less orchestration per operator, or its HO gain on it was smaller"),
    "fig6_decode_speedup_range_ho": (
        "unfused decode issues one kernel per eager operator (about 1100 for a 7B model), each paying the "
        "host launch and its configuration (20.5 us): 23 ms against a 1 ms fused-HO token. Under 13x with HO "
        "needs unfused kernels launched in under about 10 us, while the article's 1.4x-8x HO gains need SO "
        "costs of hundreds of microseconds per fused kernel: its launch cost must grow far more with kernel "
        "size than one configuration per operator"),
    "fig6_ho_decode_range": (
        "Bloom-176B decode runs 70 layer kernels of 0.34 ms (620 MB of weights per socket each): a 1.4x HO "
        "gain needs 0.14 ms of SO cost per kernel, which would give Mistral-7B 2K prefill (34 kernels in 19 ms) "
        "a 1.25x gain against [P]'s 1.1x maximum; no cost per kernel or per operator meets both. The "
        "article's bloom decode must have run each layer as several shorter kernels, or its SO decode loop "
        "paid host work per kernel that prefill did not"),
    "fig6_kernel_call_reduction_llama7b_prefill": (
        "the planner fuses each 4K prefill decoder layer into one kernel, as in decode: nothing forces a break "
        "(the whole K and V that eager attention needs before its first score tile take 4 MiB of the 520 MiB). "
        "The article's about 3 kernels per layer come from its compiler's choices or programmer hints "
        "(e.g. attention apart from the MLP), or from unfused operators that launch more than one kernel"),
}


def claims_fig6(config: dict, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Reproduced values of the Figure 6 claims from the fusion table.

    The speedup ranges are checked on both sets of fused bars of the figure: software-orchestrated
    (SO) and hardware-orchestrated (HO).
    """

    t = fig6_fusion(config) if table is None else table
    claims = {c["id"]: c for c in load_claims()}
    paper = {k: c["paper"] for k, c in claims.items()}
    rows = []

    def add(claim_id, value, note):
        c = claims[claim_id]
        if claim_id in FIG6_GAPS and not passes(c["check"], c["paper"], value, c["tolerance"]):
            note = f"{note}. Why it fails: {FIG6_GAPS[claim_id]}"
        rows.append((claim_id, value, note))

    def span(frame, col):
        return ", ".join(f"{r.benchmark}/{r.seq_len}/{r.phase} {getattr(r, col):.2f}" for r in frame.itertuples())

    fft = t[t.phase == "fftconv"]
    if len(fft):
        add("fig6_fftconv_single_kernel", float(fft.kernels_fused.iloc[0]), "fused kernels of FlashFFTConv")
        add("fig6_fftconv_speedup", float(fft.speedup_so.iloc[0]), "unfused / fused-SO time")
        add("fig6_fftconv_speedup_ho", float(fft.speedup_ho.iloc[0]), "unfused / fused-HO time")
    big = t[t.phase.isin(["prefill", "train"])]
    dec = t[t.phase == "decode"]
    for frame, claim_id in ((big, "fig6_prefill_train_speedup_range"), (dec, "fig6_decode_speedup_range")):
        if len(frame):
            add(claim_id, _range_value(frame.speedup_so, *paper[claim_id]),
                "unfused / fused-SO: " + span(frame, "speedup_so"))
            add(claim_id + "_ho", _range_value(frame.speedup_ho, *paper[claim_id + "_ho"]),
                "unfused / fused-HO: " + span(frame, "speedup_ho"))
    if len(big):
        add("fig6_ho_prefill_train_max", _range_value(big.ho_over_so, *paper["fig6_ho_prefill_train_max"]),
            "fused-SO / fused-HO: " + span(big, "ho_over_so"))
    if len(dec):
        add("fig6_ho_decode_range", _range_value(dec.ho_over_so, *paper["fig6_ho_decode_range"]),
            "fused-SO / fused-HO: " + span(dec, "ho_over_so"))
    llm = t[t.phase != "fftconv"]
    if len(llm):
        add("fig6_ops_per_fused_pipeline", float(llm.max_ops_per_kernel.min()),
            "smallest, over the LLM runs, of the largest fused kernel's operator count")
    l7p = t[(t.benchmark == "llama2-7b") & (t.phase == "prefill")]
    if len(l7p):
        r = l7p.iloc[0]
        add("fig6_kernel_call_reduction_llama7b_prefill", r.kernels_unfused / r.kernels_fused,
            f"{r.kernels_unfused} eager operators -> {r.kernels_fused} fused kernels")
    l7d = t[(t.benchmark == "llama2-7b") & (t.phase == "decode")]
    if len(l7d):
        r = l7d.iloc[0]
        add("decode_hbm_bandwidth_fraction", r.hbm_bw_fraction_ho, "llama2-7b decode, fused-HO, whole token step")
        add("decode_pcu_pmu_occupancy", min(r.pcu_occupancy_ho, r.pmu_occupancy_ho),
            f"llama2-7b decode: PCUs {r.pcu_occupancy_ho:.2f}, PMUs {r.pmu_occupancy_ho:.2f} (the lower is checked)")
    return pd.DataFrame(rows, columns=["id", "reproduced", "note"])


GOLDEN_TABLES.update({
    "fig3_operational_intensity": fig3_operational_intensity,
    "fig6_fusion": fig6_fusion,
})


def _table2_all_profiles(config: dict) -> pd.DataFrame:

    profiles = config["coe"].get("profiles", ["paper", "measured"])
    return pd.concat([table2_coe_speedups(config, p) for p in profiles], ignore_index=True)


def _fig2(config: dict) -> pd.DataFrame:

    return fig2_breakdown(config)


GOLDEN_TABLES.update({"table2_coe_speedups": _table2_all_profiles, "fig2_breakdown": _fig2})


# ----------------------------------------------------------------------------- GPU validation (issue 19)
def _gpu_validation_summary(config: dict) -> pd.DataFrame:
    """The GPU validation's summary (rdusim/report/gpu_validation.py): it does not depend on the config."""
    return summarise(validation_table())


GOLDEN_TABLES.update({"gpu_validation_summary": _gpu_validation_summary})


# ----------------------------------------------------------------------------- online serving (issue 22)
GOLDEN_TABLES.update({"online_serving_summary": summary_for_golden})


# ----------------------------------------------------------------------------- max-load throughput (extra validation)
GOLDEN_TABLES.update({"max_throughput_summary": max_throughput_summary_for_golden})
