"""The operator-graph vocabulary shared by the RDU model, the GPU baselines and the workloads.

An :class:`Op` is one tensor-level operator (as a framework like PyTorch would issue it) with its
input and output tensors; FLOPs and bytes follow from the shapes. A :class:`Graph` is a list of ops
in a valid execution (topological) order. Tensors connect ops by name. Everything is per device:
a tensor-parallel workload builds the graph of one shard and adds its collectives.

FLOP conventions: a multiply-add is 2 FLOPs; element-wise and reduction work is counted per element
with the per-kind costs in :data:`SIMD_FLOPS_PER_ELEMENT`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

# cbf16 / cf32: complex numbers as pairs of bf16 / fp32 values (FFT convolution)
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "int32": 4, "int8": 1, "bool": 1, "cbf16": 4, "cf32": 8}


class Kind(str, Enum):
    """Operator kinds. MATMUL runs on systolic arrays; the rest on SIMD pipelines or as data movement."""

    MATMUL = "matmul"
    ELEMENTWISE = "elementwise"
    REDUCTION = "reduction"
    SOFTMAX = "softmax"
    NORM = "norm"
    TRANSPOSE = "transpose"
    GATHER = "gather"
    COLLECTIVE = "collective"
    ATTENTION = "attention"   # fused scaled-dot-product attention (flash style: scores never leave the chip)


class Role(str, Enum):
    """Where a tensor comes from: produced by an op, a graph input, a weight, or the KV cache."""

    ACTIVATION = "activation"
    INPUT = "input"
    WEIGHT = "weight"
    KV_CACHE = "kv_cache"
    STATE = "state"          # optimizer state and gradients in training


@dataclass(frozen=True)
class Tensor:
    """A named tensor: shape, dtype and role."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "bf16"
    role: Role = Role.ACTIVATION

    def __post_init__(self):
        if self.dtype not in DTYPE_BYTES:
            raise ValueError(f"tensor {self.name}: dtype {self.dtype!r} not in {sorted(DTYPE_BYTES)}")
        if any(int(d) <= 0 for d in self.shape):
            raise ValueError(f"tensor {self.name}: shape {self.shape} must be positive")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_BYTES[self.dtype]


# SIMD work per output element, by kind (FLOPs). Softmax: max, subtract, exp, sum, divide.
# Norm: RMSNorm square, mean, rsqrt, scale, weight (LayerNorm adds mean-subtract and bias: 7).
SIMD_FLOPS_PER_ELEMENT = {Kind.SOFTMAX: 5.0, Kind.NORM: 5.0}


@dataclass(frozen=True)
class Op:
    """One operator. ``flops`` counts all arithmetic; ``mm`` holds (batch, M, N, K) for a matmul.

    ``read_bytes_override`` replaces the bytes read from a weight input when an op touches only part
    of it (an embedding lookup reads the rows it gathers). ``reorders`` marks an op whose output is its
    input in another order (a transpose): a streaming pipeline folds it into buffer access patterns.
    ``collective_bytes`` and ``collective_ways`` describe an all-reduce over peer links.
    """

    name: str
    kind: Kind
    inputs: tuple[Tensor, ...]
    output: Tensor
    flops: float = 0.0
    mm: tuple[int, int, int, int] | None = None
    read_bytes_override: dict[str, int] = field(default_factory=dict)
    collective_ways: int = 1
    layer: int = -1
    block: str = ""

    @property
    def weight_inputs(self) -> tuple[Tensor, ...]:
        return tuple(t for t in self.inputs if t.role in (Role.WEIGHT, Role.STATE))

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights (and optimizer state) this op reads."""
        return sum(self.read_bytes_override.get(t.name, t.nbytes) for t in self.weight_inputs)

    @property
    def activation_in_bytes(self) -> int:
        """Bytes of non-weight inputs (activations, graph inputs, KV cache)."""
        return sum(self.read_bytes_override.get(t.name, t.nbytes) for t in self.inputs
                   if t.role not in (Role.WEIGHT, Role.STATE))

    @property
    def bytes_moved(self) -> int:
        """Bytes read and written when the op runs alone (every input read, the output written)."""
        return self.weight_bytes + self.activation_in_bytes + self.output.nbytes

    @property
    def simd_elements(self) -> float:
        """Elements the op pushes through SIMD pipelines (0 for matmul and pure data movement)."""
        if self.kind in (Kind.MATMUL, Kind.TRANSPOSE, Kind.GATHER):
            return 0.0
        return float(max(self.output.numel, max((t.numel for t in self.inputs), default=0)))

    @property
    def collective_bytes(self) -> float:
        """Bytes each device sends in an all-reduce: 2 (w - 1) / w of the tensor (reduce-scatter then
        all-gather, whether as a ring or one-shot over all-to-all links)."""
        if self.kind != Kind.COLLECTIVE or self.collective_ways <= 1:
            return 0.0
        w = self.collective_ways
        return 2.0 * (w - 1) / w * self.output.nbytes

    @property
    def operational_intensity(self) -> float:
        """FLOPs per byte moved when the op runs alone."""
        return self.flops / self.bytes_moved if self.bytes_moved else math.inf


@dataclass
class Graph:
    """Operators in execution order, per device. ``outputs`` names the tensors that leave the graph."""

    name: str
    ops: list[Op] = field(default_factory=list)
    outputs: set[str] = field(default_factory=set)

    def add(self, op: Op) -> Tensor:
        self.ops.append(op)
        return op.output

    @property
    def flops(self) -> float:
        return sum(op.flops for op in self.ops)

    @property
    def weight_bytes(self) -> int:
        """Bytes of distinct weights the graph reads (each counted once)."""
        seen: dict[str, int] = {}
        for op in self.ops:
            for t in op.weight_inputs:
                seen[t.name] = max(seen.get(t.name, 0), op.read_bytes_override.get(t.name, t.nbytes))
        return sum(seen.values())

    def validate(self) -> None:
        """Check that every activation is produced before it is read and names are unique."""
        produced: set[str] = set()
        for op in self.ops:
            for t in op.inputs:
                if t.role == Role.ACTIVATION and t.name not in produced:
                    raise ValueError(f"graph {self.name}: op {op.name} reads {t.name} before it is produced")
            if op.output.name in produced:
                raise ValueError(f"graph {self.name}: tensor {op.output.name} produced twice")
            produced.add(op.output.name)


# ----------------------------------------------------------------------------- op constructors
def matmul(name: str, a: Tensor, b: Tensor, out_name: str, *, transpose_b: bool = False,
           out_dtype: str | None = None, real_products: int = 1, **tags) -> Op:
    """``a @ b`` with leading batch dims on ``a`` (and on ``b`` if it has them): 2*B*M*N*K FLOPs.

    ``a`` is (..., M, K); ``b`` is (K, N) or (..., K, N), or (..., N, K) with ``transpose_b``.
    ``real_products`` counts the real matrix products one product stands for: 2 for real x complex,
    4 for complex x complex.
    """
    *batch, m, k = a.shape
    if transpose_b:
        n, kb = b.shape[-2], b.shape[-1]
    else:
        kb, n = b.shape[-2], b.shape[-1]
    if kb != k:
        raise ValueError(f"matmul {name}: inner dims {k} and {kb} differ")
    bsz = math.prod(batch) if batch else 1
    out = Tensor(out_name, (*batch, m, n), out_dtype or a.dtype)
    return Op(name, Kind.MATMUL, (a, b), out, flops=2.0 * real_products * bsz * m * n * k,
              mm=(bsz, m, n, k), **tags)


def elementwise(name: str, inputs: tuple[Tensor, ...], out_name: str, flops_per_element: float = 1.0,
                out_shape: tuple[int, ...] | None = None, out_dtype: str | None = None, **tags) -> Op:
    """An element-wise op (add, multiply, activation function) over the largest input's shape."""
    ref = max(inputs, key=lambda t: t.numel)
    out = Tensor(out_name, out_shape or ref.shape, out_dtype or ref.dtype)
    return Op(name, Kind.ELEMENTWISE, tuple(inputs), out, flops=flops_per_element * out.numel, **tags)


def softmax(name: str, x: Tensor, out_name: str, **tags) -> Op:
    """Softmax over the last dimension."""
    out = Tensor(out_name, x.shape, x.dtype)
    return Op(name, Kind.SOFTMAX, (x,), out, flops=SIMD_FLOPS_PER_ELEMENT[Kind.SOFTMAX] * x.numel, **tags)


def norm(name: str, x: Tensor, weights: tuple[Tensor, ...], out_name: str, layernorm: bool = False, **tags) -> Op:
    """RMSNorm (5 FLOPs per element) or LayerNorm (7) over the last dimension, with its weights."""
    out = Tensor(out_name, x.shape, x.dtype)
    per = 7.0 if layernorm else SIMD_FLOPS_PER_ELEMENT[Kind.NORM]
    return Op(name, Kind.NORM, (x, *weights), out, flops=per * x.numel, **tags)


def reduction(name: str, x: Tensor, out_shape: tuple[int, ...], out_name: str, **tags) -> Op:
    """A reduction (sum, mean, max) of ``x`` to ``out_shape``: one FLOP per input element."""
    out = Tensor(out_name, out_shape, x.dtype)
    return Op(name, Kind.REDUCTION, (x,), out, flops=float(x.numel), **tags)


def transpose(name: str, x: Tensor, perm: tuple[int, ...], out_name: str, **tags) -> Op:
    """A permutation of dimensions (materialised as a copy when run alone)."""
    out = Tensor(out_name, tuple(x.shape[p] for p in perm), x.dtype)
    return Op(name, Kind.TRANSPOSE, (x,), out, **tags)


def gather(name: str, table: Tensor, index: Tensor, out_name: str, **tags) -> Op:
    """Embedding lookup: rows of ``table`` picked by ``index``; reads only the gathered rows."""
    row = table.shape[-1]
    out = Tensor(out_name, (*index.shape, row), table.dtype)
    return Op(name, Kind.GATHER, (table, index), out,
              read_bytes_override={table.name: min(table.nbytes, out.nbytes)}, **tags)


def attention(name: str, q: Tensor, k: Tensor, v: Tensor, out_name: str, causal: bool, **tags) -> Op:
    """Fused attention softmax(q k^T / sqrt(d)) v over (B, heads, T, d) queries and (B, kv_heads, C, d)
    keys and values (grouped heads read in place). FLOPs: 4 B h T C d, halved when causal over T = C
    (blocks above the diagonal are skipped)."""
    b, h, t, d = q.shape
    c = k.shape[2]
    flops = 4.0 * b * h * t * c * d * (0.5 if causal and t == c else 1.0)
    out = Tensor(out_name, q.shape, q.dtype)
    return Op(name, Kind.ATTENTION, (q, k, v), out, flops=flops, mm=(b * h, t, c, d), **tags)


def allreduce(name: str, x: Tensor, ways: int, out_name: str, **tags) -> Op:
    """Sum of ``x`` over ``ways`` devices (tensor parallelism): a reduce-scatter and an all-gather."""
    out = Tensor(out_name, x.shape, x.dtype)
    flops = float(x.numel) * (ways - 1) / ways if ways > 1 else 0.0
    return Op(name, Kind.COLLECTIVE, (x,), out, flops=flops, collective_ways=ways, **tags)
