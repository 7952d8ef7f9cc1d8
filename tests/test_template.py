"""The SN40L fast path (one-layer op tables as polynomials of batch and length, planned and costed for
many sizes in one numba pass per step) against the full-graph evaluator and its own pure-Python
references."""
import math

import numpy as np
import pytest

from benchmarks.decoder import layer_graph
from benchmarks.models import get_model, load_models
from rdusim.core.accounting import summarise_rows_jit, summarise_rows_reference
from rdusim.scenarios.predict import (
    DECODE_EXPONENTS,
    PREFILL_EXPONENTS,
    rdu_chip,
    rdu_pass_reference,
    rdu_passes,
    rdu_template,
)
from rdusim.sn40l.cost import weighted_totals_jit, weighted_totals_reference
from rdusim.sn40l.fusion import partition_rows_jit, partition_rows_reference
from rdusim.sn40l.opcost import op_fields
from rdusim.sn40l.run import EXECUTION_MODES
from rdusim.sn40l.template import (
    chip_vector,
    fit_template,
    op_fields_rows_jit,
    op_fields_rows_reference,
    template_times,
)

MODELS = sorted(load_models())
RTOL = 1e-9


def _tp(model: str, rng) -> int:
    m = get_model(model)
    return int(rng.choice([t for t in (1, 2, 4, 8) if all(v % t == 0 for v in (m.heads, m.ffn, m.vocab))]))


def _chip(rng):
    base = rdu_chip(("sn40l", "sn40l-node")[int(rng.integers(2))])
    return base.with_(hbm_bandwidth=base.hbm_bandwidth * rng.uniform(0.25, 4),
                      ddr_bandwidth=base.ddr_bandwidth * rng.uniform(0.25, 4),
                      hbm_bytes=base.hbm_bytes * rng.choice([0.25, 0.5, 1.0, 2.0]),
                      so_launch=base.so_launch * rng.uniform(0.5, 2))


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= RTOL * max(abs(a), abs(b))


@pytest.mark.parametrize("model", MODELS)
def test_template_equals_full_graph(model):
    """Every model, both phases, every mode: 6 groups of 6 random sizes each evaluated in one call of
    the fast path (random chip bandwidths, HBM size and launch cost), against the full graph of each
    size: fits, reason and time (relative difference <= 1e-9). 9 models x 66 = 594 configurations."""
    rng = np.random.default_rng(sum(map(ord, model)))
    checked = fits = 0
    for phase in ("prefill", "decode"):
        for mode in EXECUTION_MODES:
            chip, tp = _chip(rng), _tp(model, rng)
            batch = rng.integers(1, 65, 11)
            seq = rng.integers(1, 6000, 11)
            got = rdu_passes(chip, model, phase, batch, seq, tp, mode)
            for i in range(len(batch)):
                ref = rdu_pass_reference(chip, model, phase, int(batch[i]), int(seq[i]), tp, mode)
                fast = (bool(got[0][i]), got[1][i], float(got[2][i]))
                assert fast[0] == ref.fits and fast[1] == ref.reason and _close(fast[2], ref.time_s), \
                    (model, phase, mode, batch[i], seq[i], tp, fast, ref)
                checked += 1
                fits += ref.fits
    assert checked == 66 and fits > 10


def test_template_reproduces_the_op_table():
    """At a size it was not fitted on, the template's per-op SN40L fields equal opcost.op_fields of the
    one-layer graph built at that size, exactly."""
    chip = rdu_chip("sn40l")
    for model, phase, b, s in (("llama2-7b", "prefill", 7, 1000), ("mistral-7b", "decode", 3, 9000),
                               ("llava1.5-7b", "prefill", 2, 333), ("falcon-40b", "decode", 64, 4096)):
        tpl = rdu_template(model, phase, 1)
        window = get_model(model).sliding_window
        seq = min(s, window) if phase == "decode" and window else s
        fields, t_bytes, _ = op_fields_rows_jit(
            tpl.exponents, tpl.op_coef, tpl.in_coef, tpl.t_coef, tpl.weight_coef, tpl.other_coef,
            tpl.kind_class, tpl.gather, tpl.transpose, tpl.out_dtype_bytes, np.array([b]), np.array([seq]),
            chip_vector(chip))
        graph, _ = layer_graph(get_model(model), phase, b, seq, 1)
        want = np.array([op_fields(op, chip) for op in graph.ops]).T
        np.testing.assert_array_equal(fields[[0, 3, 4], 0], want)
        np.testing.assert_array_equal(fields[2, 0], [op.weight_bytes for op in graph.ops])
        np.testing.assert_array_equal(fields[5, 0], [op.bytes_moved for op in graph.ops])


@pytest.mark.parametrize("mode", list(EXECUTION_MODES))
def test_numba_row_kernels_match_references(mode):
    """Each numba step of the fast path equals its pure-Python reference, end to end and step by step."""
    rng = np.random.default_rng(5)
    chip = rdu_chip("sn40l-node")
    fusion, orchestration = EXECUTION_MODES[mode]
    for model, phase in (("llama2-7b", "prefill"), ("llama2-70b", "decode")):
        tpl = rdu_template(model, phase, 8)
        batch, seq = rng.integers(1, 65, 40), rng.integers(1, 5000, 40)
        jit = template_times(tpl, batch, seq, chip, fusion, orchestration, use_jit=True, chunk=16)
        ref = template_times(tpl, batch, seq, chip, fusion, orchestration, use_jit=False)
        assert np.array_equal(jit[0], ref[0]) and list(jit[1]) == list(ref[1])
        np.testing.assert_allclose(jit[2], ref[2], rtol=1e-12)
        args = (tpl.exponents, tpl.op_coef, tpl.in_coef, tpl.t_coef, tpl.weight_coef, tpl.other_coef,
                tpl.kind_class, tpl.gather, tpl.transpose, tpl.out_dtype_bytes, batch, seq, chip_vector(chip))
        for a, b in zip(op_fields_rows_jit(*args), op_fields_rows_reference(*args)):
            np.testing.assert_array_equal(a, b)
        fields = op_fields_rows_jit(*args)[0]
        p_args = (tpl.layer, tpl.is_stage.astype(float), fields[3], fields[4], float(chip.pcus), float(chip.pmus), True)
        (bj, cj), (br, cr) = partition_rows_jit(*p_args), partition_rows_reference(*p_args)
        assert np.array_equal(bj, br) and np.array_equal(cj, cr)
        t_bytes = op_fields_rows_jit(*args)[1]
        s_args = (bj, cj, fields[0], tpl.is_stage.astype(float), fields[2], fields[3], fields[4], fields[5],
                  fields[6], tpl.coll_steps, fields[1], tpl.in_ptr, tpl.in_tensor, t_bytes, tpl.t_producer,
                  tpl.t_last_consumer, tpl.t_is_output, tpl.op_tensor, float(chip.pcus), float(chip.pmus))
        sj, sr = summarise_rows_jit(*s_args), summarise_rows_reference(*s_args)
        np.testing.assert_allclose(sj, sr, rtol=1e-12)
        hws = np.tile(np.linspace(1, 2, 12), (40, 1))
        fields_idx = np.array([0, 1, 2, 3, 4, 5, 6, 8, 10])
        np.testing.assert_allclose(weighted_totals_jit(sj, fields_idx, cj, bj, tpl.op_repeat, hws),
                                   weighted_totals_reference(sj, fields_idx, cj, bj, tpl.op_repeat, hws), rtol=1e-12)


def test_fit_template_rejects_what_is_not_a_template():
    """Probes whose structure differs, or too few probes to check the fit, are refused."""
    m = get_model("llama2-7b")
    points = [(1, 1), (2, 1), (1, 2), (1, 3), (3, 5)]
    graphs = [layer_graph(m, "decode", b, s, 1) for b, s in points]
    with pytest.raises(ValueError, match="one probe more"):
        fit_template(graphs[:4], points[:4], DECODE_EXPONENTS)
    mixed = graphs[:4] + [layer_graph(m, "prefill", 3, 5, 1)]
    with pytest.raises(ValueError, match="structure differs"):
        fit_template(mixed, points, DECODE_EXPONENTS)
    # a basis without B*S fits the first four probes but cannot describe the KV cache at the fifth
    with pytest.raises(ValueError, match="not polynomials"):
        fit_template(graphs, points, [(0, 0), (1, 0), (0, 1), (0, 2)])
    with pytest.raises(ValueError, match="singular"):
        fit_template(graphs, [(1, 1), (2, 1), (1, 2), (2, 2), (3, 5)], [(0, 0), (1, 0), (0, 1), (0, 2)])
    assert len(PREFILL_EXPONENTS) == 6
