"""A one-layer op table as polynomials of batch and length: SN40L plans for many sizes without graphs.

The ops of a decoder layer, their kinds and how tensors connect do not change with batch ``B`` or
sequence length ``S``; every number :func:`~rdusim.sn40l.opcost.rdu_optable` reads from an op is an
exact polynomial of them (FLOPs, bytes, element counts, the last two output dimensions, a matmul's M
and N), except the bytes an embedding lookup reads (``min(table, rows gathered)``, taken here as the
same minimum of two polynomials). :func:`fit_template` reads the structure and the polynomial
coefficients off a few small probe graphs (the same graph built at a few ``(B, S)``), checking that
the structure is the same at each and the polynomials exact at a further probe. Then
:func:`op_arrays` builds the op table of any number of sizes at once as ``rows x ops`` arrays (numpy),
with the SN40L per-op fields computed as :func:`~rdusim.sn40l.opcost.op_fields` does, and
:func:`template_times` plans (:func:`~rdusim.sn40l.fusion.partition_rows_jit`), summarises
(:func:`~rdusim.core.accounting.summarise_rows_jit`), places and costs
(:func:`~rdusim.sn40l.cost.weighted_totals_jit`) every row in one numba pass per step, repeating each
repeated layer's kernels as :mod:`rdusim.sn40l.tiled` does.

Equal to the full-graph evaluator on every model, phase and mode (tests/test_template.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rdusim.core.accounting import repeated_footprint, summarise_rows_jit, summarise_rows_reference
from rdusim.core.graph import DTYPE_BYTES, Graph, Kind
from rdusim.core.jit import njit
from rdusim.core.optable import KIND_CODES, NON_STAGE, build_optable
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.cost import hw_vector, weighted_totals_jit, weighted_totals_reference
from rdusim.sn40l.fusion import MODES, partition_rows_jit, partition_rows_reference
from rdusim.sn40l.memory import place_bytes

# Per-op polynomial features (then one element count per input, see OpTemplate.in_numel)
# The rows of a kernel summary (core.accounting.summarise_reference) in cost.KERNEL_FIELDS order
SUMMARY_FIELDS = np.array([0, 1, 2, 3, 4, 5, 6, 8, 10])
FEATURES = ("flops", "weight_full", "act_in_bytes", "out_bytes", "out_numel", "out_last", "out_second",
            "mm_m", "mm_n", "coll_bytes")
MM_KINDS = np.array([KIND_CODES[Kind.MATMUL], KIND_CODES[Kind.ATTENTION]])
NON_STAGE_CODES = np.array([KIND_CODES[k] for k in NON_STAGE])


@dataclass(frozen=True)
class OpTemplate:
    """The op table of a one-layer graph with its numbers as polynomials in a basis of ``(B, S)``.

    ``exponents[k] = (i, j)``: basis function ``k`` is ``B**i * S**j``. Coefficients are
    ``(..., basis)`` arrays; evaluating them at a row's basis gives that row's numbers.
    """

    exponents: np.ndarray     # (basis, 2) int
    op_coef: np.ndarray       # (features, ops, basis)
    in_coef: np.ndarray       # (max inputs, ops, basis): element count of each input (0 where absent)
    t_coef: np.ndarray        # (tensors, basis): bytes of each tensor
    weight_coef: np.ndarray   # (basis,): weight bytes of the whole model (layers repeated)
    other_coef: np.ndarray    # (basis,): KV cache and optimizer state of the whole model
    kind: np.ndarray          # int8 per op
    kind_class: np.ndarray    # int64 per op: 0 SIMD stage, 1 systolic (matmul, attention), 2 data movement
    layer: np.ndarray         # int32 per op
    is_stage: np.ndarray      # int8 per op
    coll_steps: np.ndarray    # float64 per op
    gather: np.ndarray        # bool per op: weight bytes read = min(weights, output bytes)
    transpose: np.ndarray     # bool per op
    out_dtype_bytes: np.ndarray  # float64 per op
    op_repeat: np.ndarray     # float64 per op: how many layers the op's layer stands for
    in_ptr: np.ndarray
    in_tensor: np.ndarray
    t_producer: np.ndarray
    t_last_consumer: np.ndarray
    t_is_output: np.ndarray
    op_tensor: np.ndarray

    @property
    def n_ops(self) -> int:
        return len(self.kind)

    def basis(self, batch, seq) -> np.ndarray:
        """``(rows, basis)`` values of the basis functions at each row's batch and length."""
        b = np.asarray(batch, dtype=np.float64)[:, None]
        s = np.asarray(seq, dtype=np.float64)[:, None]
        return b ** self.exponents[:, 0] * s ** self.exponents[:, 1]


def _op_features(graph: Graph, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-op features (features x ops) and input element counts (n_inputs x ops) of one probe."""
    feats = np.zeros((len(FEATURES), len(graph.ops)))
    ins = np.zeros((n_inputs, len(graph.ops)))
    for i, op in enumerate(graph.ops):
        out = op.output
        weight_full = sum(t.nbytes for t in op.weight_inputs)
        capped = min(weight_full, out.nbytes) if op.kind == Kind.GATHER else weight_full
        if op.weight_bytes != capped or any(k not in {t.name for t in op.weight_inputs} or op.kind != Kind.GATHER
                                            for k in op.read_bytes_override):
            raise ValueError(f"op {op.name}: bytes read other than whole tensors or an embedding lookup")
        _, m, n, _ = op.mm or (0, 0, 0, 0)
        feats[:, i] = (op.flops, weight_full, op.activation_in_bytes, out.nbytes, out.numel, out.shape[-1],
                       out.shape[-2] if len(out.shape) > 1 else 1, m, n, op.collective_bytes)
        ins[:len(op.inputs), i] = [t.numel for t in op.inputs]
    return feats, ins


def _solve(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients ``c`` with ``a @ c = y`` (columns of ``y``), ``a`` a small integer matrix: its exact
    inverse is ``n / d`` with ``n`` an integer matrix, so integer (and dyadic) polynomial values give
    their coefficients exactly (every product and sum below 2**53)."""
    k = a.shape[0]
    m = [[Fraction(int(v)) for v in row] + [Fraction(int(i == j)) for j in range(k)] for i, row in enumerate(a)]
    for col in range(k):  # Gauss-Jordan in rationals
        pivot = next((r for r in range(col, k) if m[r][col] != 0), None)
        if pivot is None:
            raise ValueError("the probe points do not determine the polynomials (singular basis matrix)")
        m[col], m[pivot] = m[pivot], m[col]
        m[col] = [v / m[col][col] for v in m[col]]
        for r in range(k):
            if r != col and m[r][col] != 0:
                m[r] = [v - m[r][col] * w for v, w in zip(m[r], m[col])]
    d = math.lcm(*(v.denominator for row in m for v in row[k:]))
    n = np.array([[float(v * d) for v in row[k:]] for row in m])
    return (n @ y) / d


def fit_template(probes: list[tuple[Graph, dict[int, int]]], points: list[tuple[int, int]],
                 exponents: list[tuple[int, int]]) -> OpTemplate:
    """The :class:`OpTemplate` of a one-layer graph from the same graph built at ``points`` ``(B, S)``
    (``probes[i]`` at ``points[i]``, each with its ``{layer: repeats}``). The first ``len(exponents)``
    probes determine the polynomials; the rest check them (exactly for byte, element and dimension
    counts, to 1e-12 for FLOPs)."""
    if len(probes) <= len(exponents):
        raise ValueError("fit_template needs one probe more than basis functions (to check the fit)")
    exps = np.asarray(exponents, dtype=np.int64)
    tabs = [build_optable(g) for g, _ in probes]
    ref, ref_graph = tabs[0], probes[0][0]
    for tab, (g, reps) in zip(tabs[1:], probes[1:]):
        same = (tab.names == ref.names and reps == probes[0][1]
                and all(np.array_equal(getattr(tab, f), getattr(ref, f))
                        for f in ("kind", "layer", "is_stage", "coll_steps", "in_ptr", "in_tensor", "t_producer",
                                  "t_last_consumer", "t_is_output")))
        if not same:
            raise ValueError(f"graph {g.name}: structure differs from {ref_graph.name}; no template")
    n_inputs = max(len(op.inputs) for op in ref_graph.ops)
    n_ops, n_t = ref.n_ops, len(ref.t_bytes)
    columns = []
    for (g, reps), tab in zip(probes, tabs):
        feats, ins = _op_features(g, n_inputs)
        weights, other = repeated_footprint(g, reps)
        largest = max(op.output.nbytes for op in g.ops)
        columns.append(np.concatenate([feats.ravel(), ins.ravel(), tab.t_bytes, [weights, other - 2 * largest]]))
    y = np.vstack(columns)
    integral = np.ones(y.shape[1], dtype=bool)
    integral[:n_ops] = False                                   # FLOPs (feature 0)
    integral[(len(FEATURES) - 1) * n_ops:len(FEATURES) * n_ops] = False  # collective bytes
    bases = np.array([[float(b) ** i * float(s) ** j for i, j in exps] for b, s in points])
    k = len(exps)
    coef = _solve(bases[:k], y[:k])
    coef[:, integral] = np.rint(coef[:, integral])
    check = bases[k:] @ coef
    exact = np.array_equal(check[:, integral], y[k:, integral])
    if not exact or not np.allclose(check[:, ~integral], y[k:, ~integral], rtol=1e-12, atol=0):
        raise ValueError(f"graph {ref_graph.name}: op numbers are not polynomials in the basis {exponents}")
    nf = len(FEATURES) * n_ops
    ni = n_inputs * n_ops
    repeats = probes[0][1]
    op_tensor = np.full(n_ops, -1, dtype=np.int64)
    produced = np.nonzero(ref.t_producer >= 0)[0]
    op_tensor[ref.t_producer[produced]] = produced
    return OpTemplate(
        exponents=exps,
        op_coef=np.ascontiguousarray(coef[:, :nf].T.reshape(len(FEATURES), n_ops, k)),
        in_coef=np.ascontiguousarray(coef[:, nf:nf + ni].T.reshape(n_inputs, n_ops, k)),
        t_coef=np.ascontiguousarray(coef[:, nf + ni:nf + ni + n_t].T),
        weight_coef=coef[:, -2].copy(), other_coef=coef[:, -1].copy(),
        kind=ref.kind, layer=ref.layer, is_stage=ref.is_stage, coll_steps=ref.coll_steps,
        kind_class=np.where(np.isin(ref.kind, MM_KINDS), 1, np.where(np.isin(ref.kind, NON_STAGE_CODES), 2, 0)),
        gather=ref.kind == KIND_CODES[Kind.GATHER], transpose=ref.kind == KIND_CODES[Kind.TRANSPOSE],
        out_dtype_bytes=np.array([float(DTYPE_BYTES[op.output.dtype]) for op in ref_graph.ops]),
        op_repeat=np.array([float(repeats.get(int(layer), 1)) for layer in ref.layer]),
        in_ptr=ref.in_ptr, in_tensor=ref.in_tensor, t_producer=ref.t_producer,
        t_last_consumer=ref.t_last_consumer, t_is_output=ref.t_is_output, op_tensor=op_tensor)


def op_fields_rows_reference(exponents, op_coef, in_coef, t_coef, weight_coef, other_coef, kind_class, gather,
                             transpose, out_dtype_bytes, batch, seq, chip_vec):
    """The size-dependent arrays of the op tables of a template at each ``(batch[r], seq[r])``, with the
    per-op fields of :func:`~rdusim.sn40l.opcost.op_fields` (the same arithmetic, element for element).

    ``kind_class`` per op: 0 SIMD stage, 1 matmul or attention (systolic), 2 data movement or collective.
    ``chip_vec``: systolic rows, systolic cols, matmul FLOP/s of one PCU, SIMD stages, SIMD elements/s of
    one PCU, PMU bytes, stream tile rows, SRAM bytes. Returns ``fields`` (8, rows, ops): work_s, flops,
    weight bytes, buffer PMUs, weight PMUs, on-chip bytes, collective bytes (and 0), ``t_bytes``
    (rows, tensors) and ``footprint`` (2, rows): weight bytes and other resident bytes of the model.
    """
    rows = batch.shape[0]
    n_f, n, k = op_coef.shape
    n_in = in_coef.shape[0]
    n_t = t_coef.shape[0]
    sys_r, sys_c, mm_rate, simd_stages, simd_rate, pmu, tile_rows, sram = (
        chip_vec[0], chip_vec[1], chip_vec[2], chip_vec[3], chip_vec[4], chip_vec[5], chip_vec[6], chip_vec[7])
    fields = np.zeros((8, rows, n))
    t_bytes = np.empty((rows, n_t))
    footprint = np.empty((2, rows))
    basis = np.empty(k)
    f = np.empty(n_f)
    for r in range(rows):
        for j in range(k):
            basis[j] = float(batch[r]) ** exponents[j, 0] * float(seq[r]) ** exponents[j, 1]
        largest = 0.0
        for i in range(n):
            for q in range(n_f):
                v = 0.0
                for j in range(k):
                    v += op_coef[q, i, j] * basis[j]
                f[q] = v
            flops, weight_full, act_in, out_bytes, out_numel, last, second, mm_m, mm_n, coll = (
                f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9])
            weight = min(weight_full, out_bytes) if gather[i] else weight_full
            if kind_class[i] == 1:
                util = (mm_m / (np.ceil(mm_m / sys_r) * sys_r)) * (mm_n / (np.ceil(mm_n / sys_c) * sys_c))
                work = flops / (mm_rate * util)
            elif kind_class[i] == 2:
                work = 0.0
            else:
                elements = out_numel
                for q in range(n_in):
                    v = 0.0
                    for j in range(k):
                        v += in_coef[q, i, j] * basis[j]
                    if v > elements:
                        elements = v
                per_element = flops / elements if elements > 0 else 0.0
                passes = max(1.0, np.ceil(per_element / simd_stages))
                work = elements * passes / simd_rate
            block = last * second if transpose[i] else tile_rows * last
            buffer_pmus = max(1.0, np.ceil(2 * min(out_bytes, block * out_dtype_bytes[i]) / pmu))
            weight_pmus = 0.0
            if weight > 0:
                resident = np.floor(out_numel / last) > tile_rows and weight <= sram / 2
                weight_pmus = np.ceil(weight / pmu) if resident else 2.0
            fields[0, r, i] = work
            fields[1, r, i] = flops
            fields[2, r, i] = weight
            fields[3, r, i] = buffer_pmus
            fields[4, r, i] = weight_pmus
            fields[5, r, i] = weight + act_in + out_bytes
            fields[6, r, i] = coll
            if out_bytes > largest:
                largest = out_bytes
        for t in range(n_t):
            v = 0.0
            for j in range(k):
                v += t_coef[t, j] * basis[j]
            t_bytes[r, t] = v
        w = 0.0
        o = 0.0
        for j in range(k):
            w += weight_coef[j] * basis[j]
            o += other_coef[j] * basis[j]
        footprint[0, r] = w
        footprint[1, r] = o + 2 * largest
    return fields, t_bytes, footprint


op_fields_rows_jit = njit(cache=True)(op_fields_rows_reference)


def chip_vector(chip: RduChip) -> np.ndarray:
    """The chip values :func:`op_fields_rows_reference` reads (compute units and SRAM, no bandwidths)."""
    return np.array([chip.systolic_rows, chip.systolic_cols, chip.mm_flops_per_pcu, chip.simd_stages,
                     chip.simd_elements_per_pcu, chip.pmu_bytes, chip.stream_tile_rows, chip.sram_bytes],
                    dtype=np.float64)


def template_times(tpl: OpTemplate, batch, seq, chip: RduChip, fusion: str, orchestration: str,
                   use_jit: bool = True, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fits, reason, time_s)`` arrays of the pass ``tpl`` at each ``(batch[r], seq[r])`` on one socket
    ``chip``: the evaluator's placement (:func:`~rdusim.sn40l.memory.place_bytes`), fused or unfused
    plan and kernel costs, repeated layers' kernels counted as often as the layer repeats. Rows are
    evaluated ``chunk`` at a time, each step one numba call."""
    if fusion not in MODES:
        raise ValueError(f"fusion {fusion!r} not in {MODES}")
    batch = np.array(batch, dtype=np.int64).ravel()  # writable copies: one numba signature
    seq = np.array(seq, dtype=np.int64).ravel()
    rows = batch.shape[0]
    fits = np.zeros(rows, dtype=bool)
    reason = np.full(rows, "", dtype=object)
    times = np.full(rows, np.nan)
    for a in range(0, rows, chunk):
        part = slice(a, min(rows, a + chunk))
        fits[part], reason[part], times[part] = _chunk_times(tpl, batch[part], seq[part], chip, fusion, orchestration,
                                                             use_jit)
    return fits, reason, times


def _chunk_times(tpl: OpTemplate, batch, seq, chip: RduChip, fusion: str, orchestration: str, use_jit: bool):
    fields_fn = op_fields_rows_jit if use_jit else op_fields_rows_reference
    partition = partition_rows_jit if use_jit else partition_rows_reference
    summarise = summarise_rows_jit if use_jit else summarise_rows_reference
    totals = weighted_totals_jit if use_jit else weighted_totals_reference
    fields, t_bytes, (weights, other) = fields_fn(
        tpl.exponents, tpl.op_coef, tpl.in_coef, tpl.t_coef, tpl.weight_coef, tpl.other_coef, tpl.kind_class, tpl.gather,
        tpl.transpose, tpl.out_dtype_bytes, batch, seq, chip_vector(chip))
    rows, n = fields.shape[1:]
    # placement (memory.place_bytes, the same arithmetic for every row)
    in_ddr = weights - np.minimum(weights, chip.hbm_bytes - other)
    fits = (other <= chip.hbm_bytes) & (in_ddr <= chip.ddr_bytes)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(weights > 0, in_ddr / weights, 0.0)
    reason = np.full(rows, "", dtype=object)
    for i in np.flatnonzero(~fits):
        reason[i] = place_bytes(float(weights[i]), float(other[i]), chip).reason
    times = np.full(rows, np.nan)
    run = np.flatnonzero(fits)
    if run.size == 0:
        return fits, reason, times
    if run.size < rows:
        fields, t_bytes = fields[:, run], t_bytes[run]
    work, flops, weight, buffer_pmus, weight_pmus, onchip, coll = fields[:7]
    is_stage = tpl.is_stage.astype(np.float64)
    if fusion == "unfused":
        bounds = np.tile(np.arange(n + 1, dtype=np.int64), (run.size, 1))
        counts = np.full(run.size, n, dtype=np.int64)
    else:
        bounds, counts = partition(tpl.layer, is_stage, buffer_pmus, weight_pmus, float(chip.pcus), float(chip.pmus),
                                   True)
    summary = summarise(bounds, counts, work, is_stage, weight, buffer_pmus, weight_pmus, onchip, coll,
                        tpl.coll_steps, flops, tpl.in_ptr, tpl.in_tensor, t_bytes, tpl.t_producer,
                        tpl.t_last_consumer, tpl.t_is_output, tpl.op_tensor, float(chip.pcus), float(chip.pmus))
    hws = np.tile(hw_vector(chip, orchestration), (run.size, 1))
    hws[:, 8] = fraction[run]
    times[run] = totals(summary, SUMMARY_FIELDS, counts, bounds, tpl.op_repeat, hws)
    return fits, reason, times
