"""GPU baselines: lowering, costing, calibration against the H100 measurements, generalisation."""
import pytest

from baselines.calibration import calibration_table, fit, measured_points
from baselines.gpu import (
    GpuConstants,
    GpuDevice,
    evaluate,
    fused_boundaries,
    lower,
    total_time,
)
from benchmarks.decoder import workload_graph
from benchmarks.models import get_model
from rdusim.core.errors import ConfigError
from rdusim.core.optable import build_optable

CONST = GpuConstants.load()


@pytest.fixture(scope="module")
def table():
    return calibration_table(CONST)


def test_packaged_constants_are_the_current_fit():
    fresh = fit(measured_points(), CONST)
    for name in ("bw_efficiency", "gemm_efficiency", "kernel_floor", "eager_host"):
        assert getattr(fresh, name) == pytest.approx(getattr(CONST, name), rel=2e-3), name


def test_graph_mode_decode_and_4k_prefill_within_10pct(table):
    fit_rows = table[table.split == "fit"]
    graph = fit_rows[fit_rows["mode"] == "cuda-graph"]
    assert (graph.rel_err.abs() <= 0.10).all()
    assert set(graph.batch) == {1, 8}
    long_prefill = fit_rows[fit_rows.prompt == 4096]
    assert len(long_prefill) == 1 and abs(long_prefill.rel_err.iloc[0]) <= 0.10


def test_eager_mostly_within_25pct(table):
    eager = table[(table.split == "fit") & (table["mode"] == "eager")]
    assert (eager.rel_err.abs() <= 0.25).mean() >= 0.8
    assert eager.rel_err.abs().median() <= 0.15


def test_generalisation_to_unfitted_model_batch_and_engine(table):
    for split, limit in (("holdout_mistral", 0.10), ("holdout_bs8", 0.10), ("unseen_trtllm", 0.25)):
        rows = table[table.split == split]
        graph_or_fused = rows[rows["mode"].isin(["cuda-graph", "fused"])]
        assert len(graph_or_fused) and (graph_or_fused.rel_err.abs() <= limit).all(), split


def test_modes_order_and_kernel_counts():
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 1024, 1, attention_impl="sdpa")
    dev = GpuDevice.from_platform("h100-sxm")
    eager, graph, fused = (evaluate(g, dev, m) for m in ("eager", "cuda-graph", "fused"))
    assert eager.time_s > graph.time_s > fused.time_s
    assert eager.kernels == graph.kernels == len(g.ops)
    assert fused.kernels < graph.kernels / 3


def test_fused_attention_keeps_scores_on_chip():
    g = workload_graph(get_model("llama2-7b"), "prefill", 1, 2048, 1)  # eager attention ops
    scores = 32 * 2048 * 2048 * 2
    eager_bytes = lower(g, "eager").bytes.sum()
    fused_bytes = lower(g, "fused").bytes.sum()
    assert eager_bytes - fused_bytes > 32 * 4 * scores  # several score-sized tensors per layer avoided
    b = fused_boundaries(build_optable(g), g)
    names = [g.ops[i].name for i in b[:-1]]
    assert "L0.qk" not in names or "L0.softmax" not in names


def test_unmeasured_gpu_uses_datasheet_times_measured_ratio():
    a100 = GpuDevice.from_platform("a100-sxm", CONST)
    assert a100.copy_bandwidth == pytest.approx(2039e9 * CONST.copy_to_datasheet)
    h100 = GpuDevice.from_platform("h100-sxm", CONST)
    assert h100.copy_bandwidth == pytest.approx(2981.6e9)  # measured


def test_more_bandwidth_is_faster_and_oom_is_a_result():
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 1024, 1, attention_impl="sdpa")
    k = lower(g, "cuda-graph")
    a100, h200 = GpuDevice.from_platform("a100-sxm"), GpuDevice.from_platform("h200-sxm")
    assert total_time(k, h200, CONST) < total_time(k, a100, CONST)
    big = workload_graph(get_model("llama2-70b"), "decode", 1, 1024, 1, attention_impl="sdpa")
    r = evaluate(big, a100, "fused")
    assert not r.fits and "HBM" in r.reason


def test_rdu_platform_is_refused_for_gpu_model():
    with pytest.raises(ConfigError, match="GPU platform"):
        GpuDevice.from_platform("sn40l")
