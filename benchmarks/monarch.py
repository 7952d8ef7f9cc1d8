"""The article's Figure 3a: a simplified Monarch FFT decomposition (Gemm0, Mul, Transpose, Gemm1).

The figure draws tensor shapes only on its edges; no text gives them. The shapes here are the
FlashFFTConv-style choice that reproduces the conference version's three operational intensities
best with one consistent byte accounting (see ``rdusim/README.md``, "Figure 3"):

* ``sequences`` (batch x channels) = 1024 real BF16 inputs of length 16384, zero-padded on chip to
  an FFT of 32768 = N1 x N2 = 256 x 128 points and viewed as (sequences, N2, N1);
* Gemm0: real input x the complex N1-point DFT matrix (2 real products per complex one);
* Mul: complex twiddle factors, 6 FLOPs per complex multiply;
* Transpose: (N2, N1) -> (N1, N2);
* Gemm1: complex x the complex N2-point DFT matrix (4 real products);
* intermediates complex FP32 (the GEMMs accumulate in FP32), DFT matrices and twiddles complex
  BF16, the output complex BF16.
"""
from __future__ import annotations

from dataclasses import replace

from rdusim.core.graph import Graph, Role, Tensor, elementwise, matmul, transpose


def monarch_fft_graph(sequences: int = 1024, length: int = 16384, n1: int = 256, n2: int = 128) -> Graph:
    """Operator graph of Figure 3a for ``sequences`` inputs of ``length`` samples (FFT size n1 x n2)."""
    if length > n1 * n2:
        raise ValueError(f"length {length} exceeds the FFT size {n1} x {n2}")
    g = Graph("monarch_fft")
    x = Tensor("x", (sequences, n2, n1), "bf16", Role.INPUT)  # padded view; only `length` samples are read
    f_n1 = Tensor("dft_n1", (n1, n1), "cbf16", Role.WEIGHT)
    twiddle = Tensor("twiddle", (n2, n1), "cbf16", Role.WEIGHT)
    f_n2 = Tensor("dft_n2", (n2, n2), "cbf16", Role.WEIGHT)
    gemm0 = matmul("Gemm0", x, f_n1, "gemm0_out", out_dtype="cf32", real_products=2)
    gemm0 = replace(gemm0, read_bytes_override={"x": sequences * length * 2})
    g.add(gemm0)
    g.add(elementwise("Mul", (gemm0.output, twiddle), "mul_out", flops_per_element=6.0))
    t = g.add(transpose("Transpose", g.ops[-1].output, (0, 2, 1), "transpose_out"))
    g.add(matmul("Gemm1", t, f_n2, "fft_out", out_dtype="cbf16", real_products=4))
    g.outputs.add("fft_out")
    return g
