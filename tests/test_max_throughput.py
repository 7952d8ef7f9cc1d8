"""Max-load throughput against TensorRT-LLM's perf overview (extra validation, never fitted): the data's
checks, one replayed point, the sensitivities' direction and hygiene (constants restored, derived stack file),
the computed basis, the figure's labels, and the array form of the closed-form pass cost that makes the
replay cheap (equal to ``pass_cost`` point by point)."""
import numpy as np
import pytest

from baselines.gpu import GpuConstants
from rdusim.core.errors import ConfigError
from rdusim.core.stacks import load_stack
from rdusim.report import max_throughput
from rdusim.report.max_throughput import (
    active_gpu_constants,
    basis_for,
    fitted_bases,
    kv_memory_fraction,
    load_points,
    load_sources,
    max_throughput_summary,
    max_throughput_table,
    replay_point,
    variant_stack_file,
)
from rdusim.report.max_throughput_plots import plot_max_throughput
from rdusim.scenarios.closed_form import arch_of, gpu_dense_pass_times, pass_cost, place
from rdusim.scenarios.engine import kv_capacity_tokens
from rdusim.scenarios.predict import gpu_constants

# the source's $num_requests per ISL/OSL (perf-overview.md, "Preparing a Dataset")
NUM_REQUESTS = {(128, 128): 30000, (128, 2048): 3000, (128, 4096): 1500, (1000, 2000): 1500, (2048, 128): 3000,
                (2048, 2048): 1500, (5000, 500): 1500, (1000, 1000): 3000, (500, 2000): 3000, (20000, 2000): 1000}


def test_points_as_published():
    pts = load_points()
    assert len(pts) == 60 and pts.groupby(["model", "gpu", "tp"]).size().eq(10).all()
    assert {(r.prompt, r.gen): r.requests for r in pts.itertuples()} == NUM_REQUESTS
    by = pts.set_index(["model", "gpu", "prompt", "gen"]).throughput_tokens_per_s
    assert by["llama3.1-8b", "H200", 128, 128] == 27911 and by["llama3.1-70b", "H100", 20000, 2000] == 437
    assert by["llama3.1-405b", "H100", 2048, 128] == 453


def test_points_file_goes_through_the_loader(tmp_path, monkeypatch):
    bad = tmp_path / "points.csv"
    text = max_throughput.POINTS_FILE.read_text().splitlines()
    bad.write_text("\n".join([text[0], text[1].replace(",27911", ",27,911")]) + "\n")  # a ragged row
    monkeypatch.setattr(max_throughput, "POINTS_FILE", bad)
    with pytest.raises(ConfigError, match="row"):
        load_points()
    bad.write_text("\n".join([text[0], text[1].replace(",27911", ",-5")]) + "\n")
    with pytest.raises(ConfigError, match="throughput_tokens_per_s"):
        load_points()


@pytest.mark.parametrize("edit,field", [
    (("value: 0.95", "value: 1.5"), "kv_cache_free_gpu_mem_fraction"),
    (("value: 2048\n", "value: 0\n"), "max_num_seqs"),
    (("{fp8_gemm_efficiency_vs_bf16_fraction: 1.0}", "{fp8_gemm_efficency: 1.0}"), "gpu_constants"),
    (("{sequence_step_us: 0.0}", "{sequence_stp_us: 0.0}"), "stack_runtime"),
    (("kv_precision: bf16", "kv_precision: fp9"), "kv_precision"),
    (("kv_cache_free_gpu_mem_fraction: 0.90", "kv_cache_free_gpu_mem_fraction: 0"), "kv_fraction_0.90"),
    (("    batching: chunked", "    batching: greedy"), "chunked_context.batching"),
    (('basis: "assumed: fp8_gemm_2x', 'basis: "fitted: fp8_gemm_2x'), "both.basis"),
])
def test_sources_file_is_checked(tmp_path, monkeypatch, edit, field):
    text = max_throughput.SOURCES_FILE.read_text()
    assert edit[0] in text
    bad = tmp_path / "sources.yaml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    monkeypatch.setattr(max_throughput, "SOURCES_FILE", bad)
    with pytest.raises(ConfigError, match=field):
        load_sources()


def test_kv_fraction_gives_the_cache_that_share_of_what_the_weights_leave():
    f = kv_memory_fraction("dgx-h200", "llama3.1-70b", 1, "fp8", "fp8", 0.95)
    tokens, weights, capacity = kv_capacity_tokens("dgx-h200", "llama3.1-70b", 1, f, "fp8", "fp8")
    all_left = kv_capacity_tokens("dgx-h200", "llama3.1-70b", 1, 1.0, "fp8", "fp8")[0]  # every byte the weights leave
    assert tokens == pytest.approx(0.95 * all_left, rel=1e-5)
    assert f == pytest.approx((weights + 0.95 * (capacity - weights)) / capacity, rel=1e-12) and 0.95 < f < 1.0


def test_one_replayed_point():
    # Llama-3.1-8B FP8 on one H200, 2,048 in / 128 out, 3,000 requests at once: predicted, never fitted
    # (published 3,538 tokens/s); within 2% of the value the replay gives
    src = load_sources()
    row = load_points().query("model == 'llama3.1-8b' and gpu == 'H200' and prompt == 2048 and gen == 128").iloc[0]
    got = replay_point(row, src["replay"], "trtllm", "fp8", "inflight")
    assert got["fits"] and got["throughput"] == pytest.approx(2741.0, rel=0.02)
    assert got["largest_batch"] < 2048  # the token budget, not max_num_seqs, bounds this batch


@pytest.fixture(scope="module")
def table():
    return max_throughput_table()


def test_table_is_extra_validation_predicted(table):
    assert len(table) == 60 and table.fits.all() and set(table.basis) == {"predicted"}
    assert np.allclose(table.error, table.throughput_predicted / table.throughput_published - 1)


def test_sensitivities_move_the_right_way(table):
    base = table.throughput_predicted
    assert (table.throughput_predicted_fp8_gemm_2x >= base * (1 - 1e-9)).all()    # faster GEMMs: never slower
    assert (table.throughput_predicted_no_sequence_step > base).all()             # less work per step
    assert (table.throughput_predicted_both >= table.throughput_predicted_fp8_gemm_2x * (1 - 1e-9)).all()
    assert (table.throughput_predicted_bf16_kv_cache < base).all()                # half the cache, twice the bytes
    # 0.90 instead of 0.95 of the memory after weights: a smaller cache, not monotone point by point (fewer in
    # flight can end a run's tail sooner, up to +1.8%), at most 7.4% on a KV-bound point, lower on the whole
    assert (table["throughput_predicted_kv_fraction_0.90"] / base - 1).abs().max() < 0.10
    summary = max_throughput_summary(table).set_index(["group", "variant"])
    assert summary.loc[("all", "packaged"), "median_error"] == pytest.approx(-0.121, abs=0.01)
    assert summary.loc[("all", "packaged"), "effect_vs_packaged"] == 0.0
    # the FP8 GEMM efficiency moves the predicted throughput most, the per-sequence step work little
    assert summary.loc[("all", "fp8_gemm_2x"), "effect_vs_packaged"] == pytest.approx(0.271, abs=0.02)
    assert summary.loc[("all", "no_sequence_step"), "effect_vs_packaged"] == pytest.approx(0.030, abs=0.01)
    # chunked context instead of whole contexts: mixed steps are fused passes either way, so hardly a change
    assert abs(summary.loc[("all", "chunked_context"), "effect_vs_packaged"]) < 0.01
    assert -0.02 < summary.loc[("all", "kv_fraction_0.90"), "effect_vs_packaged"] < 0


def test_constants_are_restored_and_no_file_written():
    before = gpu_constants()
    with active_gpu_constants({"fp8_gemm_efficiency_vs_bf16_fraction": 1.0}) as inside:
        assert inside.fp8_gemm_efficiency_vs_bf16 == 1.0 and gpu_constants() is inside
    assert gpu_constants() is before
    assert GpuConstants.load().fp8_gemm_efficiency_vs_bf16 == pytest.approx(0.6058)


def test_variant_stack_file_changes_one_term(tmp_path):
    path = variant_stack_file("trtllm", {"sequence_step_us": 0.0}, tmp_path)
    new, old = load_stack(path), load_stack("trtllm")
    assert new.sequence_step == 0.0 and old.sequence_step > 0
    assert (new.request, new.step, new.kernel, new.execution) == (old.request, old.step, old.kernel, old.execution)
    assert "assumed: sensitivity" in dict(new.basis)["sequence_step_us"]
    with pytest.raises(ConfigError, match="runtime"):
        variant_stack_file("trtllm", {"sequence_steps_us": 0.0}, tmp_path)


def test_basis_is_computed_from_the_fitted_constants():
    source = load_sources()["sources"]["trtllm-perf-overview-v1.0"]
    assert basis_for(source, fitted_bases()) == "predicted"
    named = ["fitted: every other row", "fitted: the rows of " + source["url"]]
    assert basis_for(source, named).startswith("calibrated: fitted: the rows of")


def test_figure_labels_are_clear(table, tmp_path, capsys):
    labels = {k: v["label"] for k, v in load_sources()["sensitivities"].items()}
    plot_max_throughput(table, labels, [str(tmp_path / "max_throughput.png")])
    err = capsys.readouterr().err
    assert "labels overlap" not in err and "too small" not in err
    assert (tmp_path / "max_throughput.png").stat().st_size > 0


@pytest.mark.parametrize("platform,model,tp,precision,kv,stack", [
    ("dgx-h100", "llama3.1-70b", 2, "fp8", "fp8", "trtllm"),
    ("h200-sxm", "llama3.1-8b", 1, "fp8", "bf16", "vllm"),
    ("dgx-a100", "mistral-7b", 4, "bf16", "fp8", "kernels"),   # a sliding window
    ("dgx-h100", "llama2-7b", 1, "int8", "bf16", "trtllm"),
])
def test_array_pass_times_equal_pass_cost(platform, model, tp, precision, kv, stack):
    s = load_stack(stack)
    placement = place(platform, arch_of(model), tp, precision, kv, 1, 1)
    batch = np.array([1, 3, 64, 700, 2048] * 4)
    ctx = np.repeat([1, 2, 777, 20000], 5)
    for mode in ("fused", "cuda-graph"):
        pre = gpu_dense_pass_times(platform, model, tp, mode, precision, kv, ctx, batch, ctx, s)
        dec = gpu_dense_pass_times(platform, model, tp, mode, precision, kv, 1, batch, ctx, s)
        ref_pre = [pass_cost(platform, model, tp, mode, precision, kv, int(c), int(b), int(c), placement, stack=s).time_s
                   for b, c in zip(batch, ctx)]
        ref_dec = [pass_cost(platform, model, tp, mode, precision, kv, 1, int(b), int(c), placement, stack=s).time_s
                   for b, c in zip(batch, ctx)]
        assert pre == pytest.approx(ref_pre, rel=1e-12) and dec == pytest.approx(ref_dec, rel=1e-12)


def test_array_pass_times_refuse_a_mixture_of_experts():
    with pytest.raises(ConfigError, match="dense model"):
        gpu_dense_pass_times("dgx-h100", "mixtral-8x7b", 1, "fused", "bf16", "bf16", 1, np.array([1]), np.array([1]))
