"""The SN40L core: planner invariants, cost monotonicity, numba against the pure-Python references."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.decoder import workload_graph
from benchmarks.models import get_model
from rdusim.core.accounting import summarise_jit, summarise_reference
from rdusim.core.errors import ConfigError
from rdusim.core.graph import (
    Graph,
    Role,
    Tensor,
    allreduce,
    elementwise,
    matmul,
    softmax,
    transpose,
)
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.cost import (
    hw_vector,
    kernel_matrix,
    kernel_times_jit,
    kernel_times_reference,
    total_times_jit,
    total_times_reference,
)
from rdusim.sn40l.fusion import partition_jit, partition_reference, plan
from rdusim.sn40l.memory import place
from rdusim.sn40l.opcost import rdu_optable
from rdusim.sn40l.run import evaluate, evaluate_modes

CHIP = RduChip.from_platform("sn40l")


def chain_graph(specs, rows=64, width=32):
    """A chain of ops from (kind, size) specs: matmul, elementwise, softmax, transpose, allreduce."""
    g = Graph("random")
    x = Tensor("in", (rows, width), role=Role.INPUT)
    for i, (kind, size, layer) in enumerate(specs):
        name = f"op{i}"
        if kind == "matmul":
            w = Tensor(f"w{i}", (x.shape[-1], size), role=Role.WEIGHT)
            op = matmul(name, x, w, f"t{i}")
        elif kind == "softmax":
            op = softmax(name, x, f"t{i}")
        elif kind == "transpose":
            op = transpose(name, x, (1, 0), f"t{i}")
        elif kind == "allreduce":
            op = allreduce(name, x, 8, f"t{i}")
        else:
            op = elementwise(name, (x,), f"t{i}", float(size % 7))
        from dataclasses import replace
        x = g.add(replace(op, layer=layer))
    g.outputs.add(x.name)
    return g


op_specs = st.lists(
    st.tuples(st.sampled_from(["matmul", "elementwise", "softmax", "transpose", "allreduce"]),
              st.integers(1, 4096), st.integers(0, 3)).map(lambda t: (t[0], t[1], t[2])),
    min_size=1, max_size=40,
).map(lambda specs: sorted(specs, key=lambda s: s[2]))


def _summaries(tab, bounds, fn):
    from rdusim.core.accounting import _op_tensor_ids
    return fn(bounds, tab.work_s, tab.is_stage.astype(float), tab.weight_bytes, tab.buffer_pmus, tab.weight_pmus,
              tab.onchip_bytes, tab.coll_bytes, tab.coll_steps, tab.flops, tab.in_ptr, tab.in_tensor, tab.t_bytes,
              tab.t_producer, tab.t_last_consumer, tab.t_is_output, _op_tensor_ids(tab), float(CHIP.pcus),
              float(CHIP.pmus))


@settings(max_examples=60, deadline=None)
@given(op_specs, st.integers(1, 512), st.sampled_from([64, 1040]), st.sampled_from([16, 1040]))
def test_numba_matches_reference(specs, rows, pcus, pmus):
    chip = CHIP.with_(pcus=pcus, pmus=pmus, sram_bytes=CHIP.pmu_bytes * pmus)
    tab = rdu_optable(chain_graph(specs, rows=rows), chip)
    args = (tab.layer, tab.is_stage.astype(float), tab.buffer_pmus, tab.weight_pmus, float(pcus), float(pmus), True)
    bounds = partition_jit(*args)
    assert np.array_equal(bounds, partition_reference(*args))
    s_jit = _summaries(tab, bounds, summarise_jit)
    s_ref = _summaries(tab, bounds, summarise_reference)
    np.testing.assert_allclose(s_jit, s_ref, rtol=1e-12)
    km = kernel_matrix(plan(tab, chip, "fused"))
    hws = np.vstack([hw_vector(chip, o, f) for o in ("so", "ho") for f in (0.0, 0.5)])
    np.testing.assert_allclose(kernel_times_jit(km, hws[0]), kernel_times_reference(km, hws[0]), rtol=1e-12)
    np.testing.assert_allclose(total_times_jit(km, hws), total_times_reference(km, hws), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(op_specs, st.integers(1, 512))
def test_fused_kernels_fit_the_chip(specs, rows):
    chip = CHIP.with_(pcus=24, pmus=32, sram_bytes=CHIP.pmu_bytes * 32)
    tab = rdu_optable(chain_graph(specs, rows=rows), chip)
    k = plan(tab, chip, "fused")
    multi = k.ops_per_kernel() > 1
    assert np.all(k.pcus[multi] <= chip.pcus)
    assert np.all(k.stages <= chip.pcus)
    need = np.array([tab.buffer_pmus[a:b].sum() + tab.weight_pmus[a:b].sum() for a, b in zip(k.start, k.stop)])
    assert np.all(need[multi] <= chip.pmus)
    assert np.all(need[multi] * chip.pmu_bytes <= chip.sram_bytes)
    # every op lands in exactly one kernel, in order, and no kernel spans two layers
    assert k.start[0] == 0 and k.stop[-1] == tab.n_ops and np.all(k.start[1:] == k.stop[:-1])
    for a, b in zip(k.start, k.stop):
        assert len(set(tab.layer[a:b])) == 1


@settings(max_examples=40, deadline=None)
@given(op_specs, st.integers(1, 512))
def test_unfused_never_faster_and_ho_never_slower(specs, rows):
    res = evaluate_modes(chain_graph(specs, rows=rows), CHIP)
    assert res["unfused"].time_s >= res["fused-so"].time_s * (1 - 1e-12)
    assert res["fused-ho"].time_s <= res["fused-so"].time_s
    assert res["unfused"].hbm_bytes >= res["fused-so"].hbm_bytes - 1e-6


@pytest.mark.parametrize("field", ["hbm_bandwidth", "ddr_bandwidth", "pmu_bandwidth", "p2p_bandwidth"])
def test_more_bandwidth_never_slower(field):
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 4096, 8)
    km = kernel_matrix(plan(rdu_optable(g, CHIP), CHIP, "fused"))
    base = hw_vector(CHIP, "so", 0.3)
    from rdusim.sn40l.cost import HW_FIELDS
    idx = HW_FIELDS.index(field)
    hws = np.vstack([base] * 5)
    hws[:, idx] *= np.array([0.5, 1, 2, 4, 8])
    totals = total_times_jit(km, hws)
    assert np.all(np.diff(totals) <= 1e-15)


def test_single_kernel_pipeline_time_by_hand():
    """One fused matmul -> softmax kernel. SO: max(compute, HBM) + fill + launch + 2 configurations
    over the host link; HO: max(compute + fill, HBM) + launch + 2 configurations read from HBM."""
    g = Graph("hand")
    x = Tensor("x", (1024, 1024), role=Role.INPUT)
    w = Tensor("w", (1024, 1024), role=Role.WEIGHT)
    y = g.add(matmul("mm", x, w, "y"))
    g.add(softmax("sm", y, "z"))
    tab = rdu_optable(g, CHIP)
    k = plan(tab, CHIP, "fused")
    assert k.n_kernels == 1
    moved = 3 * 1024 * 1024 * 2  # x and w in, z out
    assert k.weight_bytes[0] + k.act_bytes[0] == moved
    config = 2 * CHIP.op_config_bytes
    so = max(k.compute_s[0], moved / CHIP.hbm_bandwidth) + 2 * CHIP.stage_fill_s + CHIP.so_launch \
        + config / CHIP.host_link
    assert kernel_times_jit(kernel_matrix(k), hw_vector(CHIP, "so"))[0] == pytest.approx(so)
    ho = max(k.compute_s[0] + 2 * CHIP.stage_fill_s, moved / CHIP.hbm_bandwidth) + CHIP.ho_launch \
        + config / CHIP.hbm_bandwidth
    assert kernel_times_jit(kernel_matrix(k), hw_vector(CHIP, "ho"))[0] == pytest.approx(ho)
    # compute: the matmul stage has PCUs in proportion to its work (nearly all of them)
    assert k.compute_s[0] == pytest.approx(2 * 1024**3 / CHIP.peak_flops, rel=0.02)


def test_oom_is_a_result_not_an_error():
    tiny = CHIP.with_(hbm_bytes=1e9, ddr_bytes=1e9)
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 4096, 1)
    assert not place(g, tiny).fits
    r = evaluate(g, tiny, "fused-ho")
    assert not r.fits and "GB" in r.reason and np.isnan(r.time_s)


def test_weights_spill_to_ddr_and_slow_down():
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 4096, 8)
    small_hbm = CHIP.with_(hbm_bytes=1.0e9)
    p = place(g, small_hbm)
    assert p.fits and 0 < p.weight_ddr_fraction < 1
    assert evaluate(g, small_hbm, "fused-ho").time_s > evaluate(g, CHIP, "fused-ho").time_s


def test_unknown_mode_is_named():
    with pytest.raises(ConfigError, match="fused-ho"):
        evaluate(chain_graph([("matmul", 8, 0)]), CHIP, "turbo")


def test_ho_hides_decode_latency_behind_weight_streaming_so_exposes_it():
    """A memory-bound decode layer: HO time = streaming + orchestration; SO adds fill and collective steps."""
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 4096, 8)
    k = plan(rdu_optable(g, CHIP), CHIP, "fused")
    km = kernel_matrix(k)
    j = 1  # decoder layer 0
    stream = (k.weight_bytes[j] + k.act_bytes[j]) / CHIP.hbm_bandwidth
    latency = k.coll_steps[j] * CHIP.p2p_latency + k.stages[j] * CHIP.stage_fill_s
    assert k.compute_s[j] + latency < stream
    ops = k.stop[j] - k.start[j]
    ho = kernel_times_jit(km, hw_vector(CHIP, "ho"))[j]
    so = kernel_times_jit(km, hw_vector(CHIP, "so"))[j]
    assert ho == pytest.approx(stream + CHIP.ho_launch + ops * CHIP.op_config_bytes / CHIP.hbm_bandwidth)
    assert so == pytest.approx(stream + latency + CHIP.so_launch + ops * CHIP.op_config_bytes / CHIP.host_link)


def test_fused_kernels_take_a_pmu_per_pcu():
    """Bandwidth matching: a fused kernel's stage buffers span at least as many PMUs as it has PCUs."""
    for phase in ("prefill", "decode"):
        g = workload_graph(get_model("llama2-7b"), phase, 1, 1024, 8)
        k = plan(rdu_optable(g, CHIP), CHIP, "fused")
        fused = k.ops_per_kernel() > 1
        assert np.all(k.pmus[fused] >= k.pcus[fused]) and np.all(k.pmus <= CHIP.pmus)
