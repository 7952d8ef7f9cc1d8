"""Workload graphs (benchmarks/) against closed-form counts, and Figure 6 against the article."""
import pytest
import yaml

from benchmarks.decoder import forward_graph, workload_graph
from benchmarks.fftconv import fftconv_graph
from benchmarks.models import (
    flops_per_token,
    get_model,
    kv_bytes_per_token,
    param_count,
    weight_bytes,
)
from rdusim.core.accounting import graph_footprint
from rdusim.core.errors import ConfigError
from rdusim.core.graph import Role
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.run import evaluate_modes

LLMS = ["llama2-7b", "llama2-13b", "llama2-70b", "sparsegpt-13b", "bloom-176b", "mistral-7b", "falcon-40b"]


def graph_params(g) -> int:
    return sum({t.name: t.numel for op in g.ops for t in op.inputs if t.role == Role.WEIGHT}.values())


@pytest.mark.parametrize("name", LLMS + ["llava1.5-7b"])
def test_graph_parameters_match_closed_form(name):
    m = get_model(name)
    g = forward_graph(m, "prefill", 1, 64, 1)
    # positions of learned embeddings and the tied head are counted once by the closed form
    expected = param_count(m) - (m.max_positions * m.hidden if m.position == "learned" else 0)
    if m.tied_embeddings:
        expected += m.vocab * m.hidden  # the graph's lm_head is a distinct tensor from the embedding
    if m.vision:
        expected -= (m.vision.patches + 1) * m.vision.hidden + m.vision.hidden  # class and position tables
        expected -= 2 * m.vision.hidden * 2  # pre/post LayerNorms of the tower (not in the eager graph)
        expected -= m.vision.layers * 2 * m.vision.hidden  # LayerNorm biases folded into one weight each
    assert graph_params(g) == pytest.approx(expected, rel=2e-3)


@pytest.mark.parametrize("name", LLMS)
def test_decode_flops_per_token_match_closed_form(name):
    m = get_model(name)
    ctx = 2048
    g = forward_graph(m, "decode", 1, ctx, 1)
    matmul = sum(op.flops for op in g.ops if op.mm is not None)
    assert matmul == pytest.approx(flops_per_token(m, ctx), rel=0.005)


@pytest.mark.parametrize("name", LLMS)
def test_decode_bytes_are_weights_plus_kv(name):
    m = get_model(name)
    seq, tp = 4096, 8
    chip = RduChip.from_platform("sn40l")
    fused = evaluate_modes(workload_graph(m, "decode", 1, seq, tp), chip)["fused-ho"]
    from benchmarks.models import attended_positions
    # the embedding is only looked up (a few rows); a tied model still streams it as the LM head
    embedding = 0 if m.tied_embeddings else m.vocab * m.hidden * 2
    expected = (weight_bytes(m) - embedding + kv_bytes_per_token(m) * attended_positions(m, seq)) / tp
    if m.kv_heads < tp:
        expected += kv_bytes_per_token(m) * attended_positions(m, seq) * (tp / m.kv_heads - 1) / tp
    assert fused.hbm_bytes == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("name", ["llama2-7b", "sparsegpt-13b"])
def test_training_is_three_forwards(name):
    m = get_model(name)
    fwd = forward_graph(m, "train", 1, 2048, 8)
    train = workload_graph(m, "train", 1, 2048, 8)
    matmul = lambda g: sum(op.flops for op in g.ops if op.mm is not None)  # noqa: E731
    assert matmul(train) / matmul(fwd) == pytest.approx(3.0, rel=0.01)


def test_sparsity_cuts_matmul_flops_and_weight_bytes():
    m = get_model("sparsegpt-13b")
    dense = forward_graph(m, "prefill", 1, 2048, 8)
    sparse = forward_graph(m, "prefill", 1, 2048, 8, sparsity=0.875)
    lin = lambda g: sum(op.flops for op in g.ops if op.mm is not None and op.weight_inputs)  # noqa: E731
    head = 2 * m.hidden * m.vocab // 8  # the LM head stays dense
    assert (lin(sparse) - head) / (lin(dense) - head) == pytest.approx(0.125, rel=1e-6)
    assert sparse.weight_bytes < 0.3 * dense.weight_bytes


def test_gqa_and_window_shrink_decode_traffic():
    chip = RduChip.from_platform("sn40l")
    llama = evaluate_modes(workload_graph(get_model("llama2-7b"), "decode", 1, 4096, 8), chip)["fused-ho"]
    mistral = evaluate_modes(workload_graph(get_model("mistral-7b"), "decode", 1, 4096, 8), chip)["fused-ho"]
    kv_llama = kv_bytes_per_token(get_model("llama2-7b")) * 4096 / 8
    kv_mistral = kv_bytes_per_token(get_model("mistral-7b")) * 4096 / 8
    assert kv_mistral * 4 == kv_llama
    assert mistral.hbm_bytes - weight_bytes(get_model("mistral-7b")) / 8 < llama.hbm_bytes - weight_bytes(get_model("llama2-7b")) / 8


def test_llava_prefill_runs_the_vision_tower_once():
    m = get_model("llava1.5-7b")
    pre = forward_graph(m, "prefill", 1, 4096, 8)
    dec = forward_graph(m, "decode", 1, 4096, 8)
    assert any(op.block == "vision" for op in pre.ops) and not any(op.block == "vision" for op in dec.ops)


def test_fftconv_graph_shapes_and_flops():
    g = fftconv_graph(1 << 20, 16)
    g.validate()
    n, r, s = 1 << 21, 128, 16
    gemm = sum(op.flops for op in g.ops if op.mm is not None)
    # 6 GEMM stages over s * n points against r-point DFTs; the first is real x complex
    assert gemm == pytest.approx(2 * s * n * r * (2 + 4 * 5))
    with pytest.raises(ConfigError, match="perfect"):
        fftconv_graph(1000, 1)


def test_bad_workload_input_is_named():
    m = get_model("llama2-7b")
    with pytest.raises(ConfigError, match="phase"):
        workload_graph(m, "serve", 1, 128, 8)
    with pytest.raises(ConfigError, match="tp"):
        workload_graph(m, "decode", 1, 128, 3)
    with pytest.raises(ConfigError, match="batch"):
        workload_graph(m, "decode", 0, 128, 8)


def test_memory_footprint_counts_full_weights():
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 4096, 8)
    w, other = graph_footprint(g)
    m = get_model("llama2-7b")
    embedding = m.vocab * m.hidden * 2  # replicated on every device; the rest is sharded 8 ways
    assert w == pytest.approx((weight_bytes(m) - embedding) / 8 + embedding, rel=0.002)
    assert other >= kv_bytes_per_token(get_model("llama2-7b")) * 4096 / 8


# ---------------------------------------------------------------- Figure 6 against the article
@pytest.fixture(scope="module")
def fig6(repo_root):
    from rdusim.report.tables import fig6_fusion
    return fig6_fusion(yaml.safe_load((repo_root / "config/config.yaml").read_text()))


def test_fftconv_is_one_kernel_and_about_13x(fig6):
    fft = fig6[fig6.phase == "fftconv"].iloc[0]
    assert fft.kernels_fused == 1
    assert 13 * 0.75 <= fft.speedup_so <= 13 * 1.25
    assert 13 * 0.75 <= fft.speedup_ho <= 13 * 1.25


def test_prefill_and_training_gain_1_5_to_3x_except_falcon(fig6):
    big = fig6[fig6.phase.isin(["prefill", "train"]) & (fig6.benchmark != "falcon-40b")]
    assert big.speedup_so.between(1.5, 3.0).all()


@pytest.mark.xfail(strict=True, reason="HO bars: Falcon-40B as for SO, and Mistral-7B 2K prefill at 3.1x: its "
                   "1220 unfused kernels pay 25 ms of SO orchestration in 59 ms, and HO's 1.09x gain on the fused "
                   "run lifts it past 3x")
def test_prefill_and_training_ho_bars_gain_1_5_to_3x(fig6):
    big = fig6[fig6.phase.isin(["prefill", "train"])]
    assert big.speedup_ho.between(1.5, 3.0).all()


@pytest.mark.xfail(strict=True, reason="Falcon-40B prefill gains 3.2x (SO) and 3.4x (HO): its one all-reduce "
                   "per layer (2048 x 8192) runs alone for 0.59 ms unfused over the assumed 100 GB/s peer links "
                   "but streams under the layer's compute when fused (see README, Figure 6)")
def test_falcon_prefill_within_article_range(fig6):
    f = fig6[(fig6.benchmark == "falcon-40b") & (fig6.phase == "prefill")]
    assert f.speedup_so.between(1.5, 3.0).all() and f.speedup_ho.between(1.5, 3.0).all()


def test_falcon_eager_code_does_not_materialise_scores():
    """Falcon's modelling code calls SDPA: no score tensor, unlike Llama's eager attention."""
    falcon = workload_graph(get_model("falcon-40b"), "prefill", 1, 2048, 8)
    llama = workload_graph(get_model("llama2-7b"), "prefill", 1, 2048, 8)
    assert not any(op.name.endswith(".softmax") for op in falcon.ops)
    assert any(op.name.endswith(".softmax") for op in llama.ops)


def test_decode_gains_1_to_13x_mistral_most(fig6):
    dec = fig6[fig6.phase == "decode"]
    assert dec.speedup_so.between(1.0, 13.0).all()
    assert dec.loc[dec.speedup_so.idxmax(), "benchmark"] == "mistral-7b"


@pytest.mark.xfail(strict=True, reason="unfused decode pays the SO launch and one configuration per eager "
                   "operator (20.5 us x ~1100 = 23 ms) against a ~1 ms fused-HO token: 22x-26x on 7B models. "
                   "The article's HO bars under 13x need unfused launches under ~10 us each (see README)")
def test_decode_ho_bars_within_1_to_13x(fig6):
    assert fig6[fig6.phase == "decode"].speedup_ho.between(1.0, 13.0).all()


def test_ho_gains_at_most_1_1x_on_prefill_and_training(fig6):
    big = fig6[fig6.phase.isin(["prefill", "train"])]
    assert (big.ho_over_so <= 1.1).all() and (big.ho_over_so >= 1.0).all()


def test_ho_decode_gain_reaches_1_4x_up_to_70b(fig6):
    dec = fig6[(fig6.phase == "decode") & (fig6.benchmark != "bloom-176b")]
    assert dec.ho_over_so.between(1.4, 8.0).all()


@pytest.mark.xfail(strict=True, reason="Bloom-176B's decode layer kernels take 0.34 ms: a 1.4x HO gain needs "
                   "0.14 ms of SO cost per kernel, which would push Mistral-7B 2K prefill to 1.25x against "
                   "[P]'s 1.1x maximum; no per-kernel or per-operator SO cost meets both (see README)")
def test_ho_decode_gain_for_every_model(fig6):
    assert fig6[fig6.phase == "decode"].ho_over_so.between(1.4, 8.0).all()


@pytest.mark.xfail(strict=True, reason="the planner fuses a whole decoder layer in 4K prefill, as in decode "
                   "(eager attention's whole K and V take 4 MiB of 520 MiB): 34x fewer kernels than eager "
                   "operators, not the article's 11x (about 3 kernels per layer)")
def test_kernel_calls_fall_about_11x_for_llama7b_prefill(fig6):
    r = fig6[(fig6.benchmark == "llama2-7b") & (fig6.phase == "prefill")].iloc[0]
    assert r.kernels_unfused / r.kernels_fused == pytest.approx(11, rel=0.25)


def test_fused_decode_streams_over_85_percent_of_hbm_bandwidth(fig6):
    r = fig6[(fig6.benchmark == "llama2-7b") & (fig6.phase == "decode")].iloc[0]
    assert r.hbm_bw_fraction_ho > 0.85


def test_fused_decoder_layer_occupies_about_90_percent_of_units(fig6):
    r = fig6[(fig6.benchmark == "llama2-7b") & (fig6.phase == "decode")].iloc[0]
    assert r.pcu_occupancy_ho == pytest.approx(0.9, rel=0.1)
    assert r.pmu_occupancy_ho == pytest.approx(0.9, rel=0.1)


def test_fused_pipelines_hold_20_plus_operators(fig6):
    assert (fig6[fig6.phase != "fftconv"].max_ops_per_kernel >= 20).all()


def test_all_table1_runs_present(fig6):
    assert len(fig6) == 17 and fig6.fits.all()
