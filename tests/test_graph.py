"""FLOP and byte counts of each operator kind against hand calculations."""
import pytest

from rdusim.core.graph import (
    Graph,
    Kind,
    Role,
    Tensor,
    allreduce,
    elementwise,
    gather,
    matmul,
    norm,
    reduction,
    softmax,
    transpose,
)

X = Tensor("x", (4, 64, 32))
W = Tensor("w", (32, 16), role=Role.WEIGHT)


def test_matmul_flops_and_bytes():
    op = matmul("mm", X, W, "y")
    assert op.output.shape == (4, 64, 16)
    assert op.flops == 2 * 4 * 64 * 16 * 32
    assert op.weight_bytes == 32 * 16 * 2
    assert op.bytes_moved == (4 * 64 * 32 + 32 * 16 + 4 * 64 * 16) * 2
    assert op.mm == (4, 64, 16, 32)


def test_complex_matmul_counts_real_products():
    a = Tensor("a", (8, 8), "cf32")
    b = Tensor("b", (8, 8), "cbf16", Role.WEIGHT)
    op = matmul("c", a, b, "out", real_products=4, out_dtype="cbf16")
    assert op.flops == 4 * 2 * 8 * 8 * 8
    assert op.bytes_moved == 64 * 8 + 64 * 4 + 64 * 4


def test_matmul_transposed_rhs_and_shape_mismatch():
    q = Tensor("q", (2, 4, 10, 8))
    k = Tensor("k", (2, 4, 12, 8))
    op = matmul("qk", q, k, "s", transpose_b=True)
    assert op.output.shape == (2, 4, 10, 12) and op.flops == 2 * 8 * 10 * 12 * 8
    with pytest.raises(ValueError, match="inner dims"):
        matmul("bad", q, k, "s")


def test_elementwise_softmax_norm_reduction():
    assert elementwise("e", (X, X), "o", 1.0).flops == X.numel
    assert softmax("s", X, "o").flops == 5 * X.numel
    g = Tensor("g", (32,), role=Role.WEIGHT)
    rms = norm("n", X, (g,), "o")
    assert rms.flops == 5 * X.numel and rms.weight_bytes == 64
    assert norm("n", X, (g, g), "o", layernorm=True).flops == 7 * X.numel
    assert reduction("r", X, (4, 64), "o").flops == X.numel


def test_transpose_moves_bytes_without_flops():
    op = transpose("t", X, (0, 2, 1), "o")
    assert op.output.shape == (4, 32, 64)
    assert op.flops == 0 and op.bytes_moved == 2 * X.nbytes
    assert op.kind == Kind.TRANSPOSE


def test_gather_reads_only_rows():
    table = Tensor("emb", (1000, 64), role=Role.WEIGHT)
    ids = Tensor("ids", (2, 3), "int32", Role.INPUT)
    op = gather("g", table, ids, "o")
    assert op.weight_bytes == 6 * 64 * 2
    assert op.output.shape == (2, 3, 64)


def test_allreduce_bytes():
    op = allreduce("ar", X, 8, "o")
    assert op.collective_bytes == pytest.approx(2 * 7 / 8 * X.nbytes)
    assert allreduce("ar1", X, 1, "o").collective_bytes == 0


def test_graph_validation_catches_missing_producer():
    g = Graph("g")
    g.add(elementwise("e", (Tensor("nowhere", (2,)),), "o"))
    with pytest.raises(ValueError, match="before it is produced"):
        g.validate()


def test_bad_dtype_and_shape():
    with pytest.raises(ValueError):
        Tensor("t", (2,), "fp8x")
    with pytest.raises(ValueError):
        Tensor("t", (0, 2))
