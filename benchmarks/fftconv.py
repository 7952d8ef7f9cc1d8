"""FlashFFTConv (Fu et al. 2023): a long causal convolution y = iFFT(FFT(x) * FFT(k)) as Monarch GEMMs.

A causal convolution of length L is zero-padded to an FFT of N = 2L points. With N = r^p (here
p = 3), the FFT is p stages of a GEMM against an r-point DFT matrix, a twiddle multiply, and a
transpose (the article's Figure 3a is one such stage pair). The kernel's spectrum FFT(k) is
precomputed (a weight); the inverse FFT mirrors the forward one; a last element-wise op keeps the
real part of the first L outputs. Shapes are per device (one socket runs it, as in the article).
"""
from __future__ import annotations

from dataclasses import replace

from rdusim.core.errors import ConfigError
from rdusim.core.graph import Graph, Role, Tensor, elementwise, matmul, transpose


def _radix(n: int, order: int) -> int:
    r = round(n ** (1.0 / order))
    if r**order != n:
        raise ConfigError("fftconv seq_len", n // 2, f"a length whose padded FFT 2L is a perfect {order}-th power")
    return r


def fftconv_graph(seq_len: int = 1 << 20, sequences: int = 16, order: int = 3) -> Graph:
    """Operator graph of one FFT convolution over ``sequences`` sequences of ``seq_len`` samples."""
    n = 2 * seq_len
    r = _radix(n, order)
    g = Graph(f"flashfftconv-L{seq_len}-S{sequences}")
    x = Tensor("x", (sequences * r ** (order - 1), r), "bf16", Role.INPUT)
    cur = x
    for direction in ("fwd", "inv"):
        for stage in range(order):
            dft = Tensor(f"dft_{direction}{stage}", (r, r), "cbf16", Role.WEIGHT)
            real_in = direction == "fwd" and stage == 0
            op = matmul(f"{direction}.gemm{stage}", cur, dft, f"{direction}.gemm{stage}.out", out_dtype="cf32",
                        real_products=2 if real_in else 4)
            if real_in:  # the zero padding is made on chip: only L real samples are read
                op = replace(op, read_bytes_override={"x": sequences * seq_len * 2})
            cur = g.add(op)
            if stage < order - 1:
                tw = Tensor(f"twiddle_{direction}{stage}", (r ** (order - 1), r), "cbf16", Role.WEIGHT)
                cur = g.add(elementwise(f"{direction}.twiddle{stage}", (cur, tw), f"{direction}.twiddle{stage}.out", 6.0))
            cur3 = Tensor(cur.name, (sequences * r ** (order - 2), r, r), cur.dtype)
            t = g.add(transpose(f"{direction}.transpose{stage}", cur3, (0, 2, 1), f"{direction}.transpose{stage}.out"))
            cur = Tensor(t.name, (sequences * r ** (order - 1), r), t.dtype)
        if direction == "fwd":
            k_f = Tensor("kernel_spectrum", (sequences * r ** (order - 1), r), "cbf16", Role.WEIGHT)
            cur = g.add(elementwise("spectrum_mul", (cur, k_f), "spectrum_mul.out", 6.0))
    y = g.add(elementwise("real_crop", (cur,), "y", 1.0, out_shape=(sequences, seq_len), out_dtype="bf16"))
    g.outputs.add(y.name)
    return g
