"""Optional PyTorch measurement harness behind ``rdusim calibrate-gpu``.

It measures, on whatever device PyTorch sees (the first CUDA GPU, else the CPU with small sizes):

* HBM copy bandwidth (device-to-device copy of a large buffer; bytes read + written per second),
* the dense GEMM rate (bf16 on a GPU, float32 on the CPU),
* the cost of one tiny kernel issued eagerly and, on CUDA, replayed from one CUDA graph,
* host-to-device copy bandwidth from pinned and from pageable host memory (CUDA only),
* the streaming curve: time of device-to-device copies and of GEMV-shaped matmuls (one token times a
  weight matrix) from about 1 MB to 1 GB, and a GEMM sweep over decode and prefill shapes
  (:func:`measure_sweeps`; each kernel timed as one of many replayed from a CUDA graph, cycling over
  enough buffers that none is still in L2),
* optionally, prefill and decode latency of a minimal Llama-family decoder with random weights,
  eager and (CUDA) one CUDA graph per decode step.

:func:`platform_yaml` turns a measurement into a platform mapping in the layout that
:func:`rdusim.core.platforms.load_platform` reads (``published`` datasheet values from the caller,
``measured`` values from the run, ``curves`` the measured sweeps, which :mod:`baselines.gpu` uses in place
of the constants it carries from the H100), :func:`fit_platform` adds ``fitted``: the GPU model's constants
fitted to the run's own prefill and decode timings (:func:`baselines.calibration.fit_measurement`), which
then take precedence over the curves; :func:`write_platform` writes it as YAML. ``--from-json`` rebuilds
the platform and its fitted constants from a saved measurement, with no GPU and no PyTorch.

PyTorch is imported lazily, inside the functions, so that importing this module works without it;
:func:`main` says in one line how to install it when it is missing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform as _platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from rdusim.core.checks import OneLineParser, number_arg
from rdusim.core.errors import ConfigError
from rdusim.core.helpformat import DefaultsHelpFormatter
from rdusim.core.loader import writable_file
from rdusim.core.platforms import load_platform
from rdusim.core.power import assumed_idle_share

from .calibration import FITTED, fit_measurement
from .gpu import GpuDevice
from .measurement import read_measurement

TORCH_MISSING = "rdusim calibrate-gpu needs PyTorch: pip install -e .[gpu]"

# Model shapes measured by default on a GPU (random weights; only the shapes matter).
DEFAULT_MODELS: dict[str, dict] = {
    "llama2-7b": {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 32, "ffn": 11008, "vocab": 32000},
    "mistral-7b": {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8, "ffn": 14336, "vocab": 32000},
}
# The model used with tiny=True (CPU dry runs, tests).
TINY_MODELS: dict[str, dict] = {
    "tiny-llama": {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "ffn": 128, "vocab": 256},
}
# Run settings of the model section; a model config may override any of them.
MODEL_RUN = {"prompt": 128, "decode_steps": 32, "batches": (1, 8)}
TINY_MODEL_RUN = {"prompt": 16, "decode_steps": 4, "batches": (1, 2)}

# Streaming sweep: bytes of weights per kernel (GEMV) or bytes read + written (copy), 1 MiB to 1 GiB on a
# GPU; a ring of buffers of at least RING_BYTES so that no timed kernel finds its data in L2 (50 MB on H100).
SWEEP_BYTES = tuple(1 << e for e in range(20, 31))
TINY_SWEEP_BYTES = tuple(1 << e for e in range(16, 21))
RING_BYTES, TINY_RING_BYTES = 512 << 20, 4 << 20
GEMV_K, TINY_GEMV_K = 4096, 128  # the reduction size of the GEMV-shaped matmuls (a decoder's hidden size)
# GEMM sweep: tokens M x (K, N) weight shapes of a 7B decoder (QKV/out, MLP up, MLP down); M from decode to prefill.
GEMM_M, GEMM_KN = (1, 8, 64, 512, 2048, 8192), ((4096, 4096), (4096, 11008), (11008, 4096))
TINY_GEMM_M, TINY_GEMM_KN = (1, 8, 64), ((128, 128), (128, 256))

# measurement section, measurement key -> platform ``measured`` key (each ends in a unit of rdusim.core.units)
MEASURED_KEYS: tuple[tuple[str, str, str], ...] = (
    ("hbm", "d2d_GBps_rw", "hbm_copy_GBps"),
    ("gemm", "bf16_TFLOPs", "gemm_bf16_TFLOPs"),
    ("launch", "eager_us_per_kernel", "launch_eager_us"),
    ("launch", "graph_us_per_kernel", "launch_graph_us"),
    ("h2d", "pinned_GBps", "h2d_pinned_GBps"),
    ("h2d", "pageable_GBps", "h2d_pageable_GBps"),
)

# Why a datasheet value was replaced by a stand-in (written as comments next to ``assumed``).
ASSUMED_REASONS = {
    "hbm_capacity_GB": "no --hbm-capacity-GB given; CPU run, so the host RAM stands in",
    "hbm_bandwidth_GBps": "no --hbm-bandwidth-GBps given; the measured copy bandwidth stands in",
    "peak_bf16_TFLOPs": "no --peak-bf16-TFLOPs given; the measured GEMM rate stands in",
    "host_link_GBps": "no --host-link-GBps given; the measured pinned host-to-device rate stands in",
}


def _torch():
    import torch  # noqa: PLC0415 - lazy on purpose: the module must import without PyTorch

    return torch


def _sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits (keeps tiny launch costs non-zero)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def _median_seconds(fn: Callable[[], object], sync: Callable[[], None], reps: int = 5, warmup: int = 2) -> float:
    """Median wall time in seconds of ``fn()`` over ``reps`` runs after ``warmup`` untimed runs.

    The device is synchronised before each timed run starts and after it ends, so every
    repetition covers the device work that ``fn`` queued.
    """
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _Ctx:
    """Device, dtype, sizes and synchronisation of one measurement run."""

    def __init__(self, tiny: bool):
        torch = _torch()
        self.torch = torch
        self.cuda = torch.cuda.is_available()
        self.device = torch.device("cuda", torch.cuda.current_device()) if self.cuda else torch.device("cpu")
        # the CPU only gets a dry run with small sizes
        self.tiny = tiny or not self.cuda
        self.dtype = torch.bfloat16 if self.cuda else torch.float32

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize(self.device)

    def time(self, fn: Callable[[], object], reps: int = 5, warmup: int = 2) -> float:
        return _median_seconds(fn, self.sync, reps, warmup)


def _host_memory_bytes() -> float | None:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine() or "cpu"


def _info(ctx: _Ctx) -> dict:
    torch = ctx.torch
    out = {"device": ctx.device.type, "torch": torch.__version__, "tiny": ctx.tiny,
           "dtype": str(ctx.dtype).removeprefix("torch.")}
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        out.update(name=props.name, memory_GB=_sig(props.total_memory / 1e9),
                   memory_source="cuda device properties", sms=props.multi_processor_count,
                   cuda=torch.version.cuda)
    else:
        out["name"] = _cpu_name()
        host = _host_memory_bytes()
        if host:
            out.update(memory_GB=_sig(host / 1e9), memory_source="host RAM")
        out["threads"] = torch.get_num_threads()
    return out


def measure_hbm(ctx: _Ctx) -> dict:
    """Device-to-device copy of one large buffer into another: (bytes read + bytes written) / time."""
    torch = ctx.torch
    nbytes = (8 << 20) if ctx.tiny else (1 << 30)
    src = torch.ones(nbytes, dtype=torch.uint8, device=ctx.device)
    dst = torch.empty_like(src)
    seconds = ctx.time(lambda: dst.copy_(src), reps=10, warmup=3)
    return {"d2d_GBps_rw": _sig(2 * nbytes / seconds / 1e9), "buffer_bytes": nbytes}


def measure_gemm(ctx: _Ctx) -> dict:
    """Square n x n x n matrix product (2 n^3 FLOP) in bf16 on a GPU, float32 on the CPU."""
    torch = ctx.torch
    n = 256 if ctx.tiny else 8192
    gen = torch.Generator(device=ctx.device).manual_seed(0)
    a = torch.randn(n, n, dtype=ctx.dtype, device=ctx.device, generator=gen)
    b = torch.randn(n, n, dtype=ctx.dtype, device=ctx.device, generator=gen)
    c = torch.empty(n, n, dtype=ctx.dtype, device=ctx.device)
    seconds = ctx.time(lambda: torch.matmul(a, b, out=c), reps=10, warmup=3)
    return {"bf16_TFLOPs": _sig(2 * n**3 / seconds / 1e12), "n": n, "dtype": str(ctx.dtype).removeprefix("torch.")}


def measure_launch(ctx: _Ctx) -> dict:
    """Cost per tiny kernel (an in-place add on a one-element tensor) issued many times in a row.

    ``eager_us_per_kernel``: each kernel issued from Python (host dispatch + launch).
    ``graph_us_per_kernel`` (CUDA only): the same kernels captured once into a CUDA graph and
    replayed with a single launch.
    """
    torch = ctx.torch
    kernels = 200 if ctx.tiny else 2000
    x = torch.zeros(1, device=ctx.device)

    def issue():
        for _ in range(kernels):
            x.add_(1.0)

    out = {"eager_us_per_kernel": _sig(ctx.time(issue, reps=5, warmup=1) / kernels * 1e6), "kernels": kernels}
    if ctx.cuda:
        graph = _capture(ctx, issue)
        out["graph_us_per_kernel"] = _sig(ctx.time(graph.replay, reps=5, warmup=2) / kernels * 1e6)
        del graph
    return out


def _capture(ctx: _Ctx, fn: Callable[[], object], warm_runs: int = 2):
    """Capture ``fn`` into a CUDA graph after warming it up on a side stream, as PyTorch requires."""
    torch = ctx.torch
    side = torch.cuda.Stream(device=ctx.device)
    side.wait_stream(torch.cuda.current_stream(ctx.device))
    with torch.cuda.stream(side):
        for _ in range(warm_runs):
            fn()
    torch.cuda.current_stream(ctx.device).wait_stream(side)
    ctx.sync()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    ctx.sync()
    return graph


def measure_h2d(ctx: _Ctx) -> dict:
    """Host-to-device copy of one large buffer from pinned and from pageable host memory (CUDA only).

    Returns an empty dict on the CPU, where there is no host-to-device link.
    """
    if not ctx.cuda:
        return {}
    torch = ctx.torch
    nbytes = (8 << 20) if ctx.tiny else (1 << 30)
    dev_buf = torch.empty(nbytes, dtype=torch.uint8, device=ctx.device)
    out = {"buffer_bytes": nbytes}
    for tag, pinned in (("pinned", True), ("pageable", False)):
        host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
        host.fill_(7)
        seconds = ctx.time(lambda: dev_buf.copy_(host, non_blocking=pinned), reps=5, warmup=1)
        out[f"{tag}_GBps"] = _sig(nbytes / seconds / 1e9)
        del host
    return out


def _per_kernel_seconds(ctx: _Ctx, kernels: list[Callable[[], object]], reps: int = 3) -> float:
    """Time of one kernel of ``kernels`` (issued in turn): on CUDA replayed from one CUDA graph, as the
    decode steps of the ``cuda-graph`` mode are, so the launch gap between kernels is included."""
    def issue():
        for fn in kernels:
            fn()

    if ctx.cuda:
        graph = _capture(ctx, issue, warm_runs=1)
        seconds = ctx.time(graph.replay, reps=reps, warmup=1)
        del graph
    else:
        seconds = ctx.time(issue, reps=reps, warmup=1)
    return seconds / len(kernels)


def _ring(nbytes: int, ring_bytes: int, calls: int) -> int:
    """How many buffers of ``nbytes`` to cycle over: enough to fill ``ring_bytes`` (defeats L2), at least 2."""
    return max(2, min(calls, -(-ring_bytes // nbytes)))


def measure_sweeps(ctx: _Ctx) -> dict:
    """Streaming and GEMM sweeps: the measured curves of the GPU model (issue 16).

    ``stream_copy``: device-to-device copies, ``bytes`` read + written; ``stream_gemv``: one token times a
    ``K x N`` bf16 weight matrix (``bytes`` = the weights), 1 MiB to 1 GiB; ``gemm``: ``M x K`` by ``K x N``
    matmuls over decode and prefill shapes. ``time_us``: time per kernel (a CUDA graph of 8 to 64 kernels
    cycling over a ring of buffers larger than L2, median of 3 replays). About 20 s on an H100.
    """
    torch = ctx.torch
    sizes = TINY_SWEEP_BYTES if ctx.tiny else SWEEP_BYTES
    ring_bytes = TINY_RING_BYTES if ctx.tiny else RING_BYTES
    k = TINY_GEMV_K if ctx.tiny else GEMV_K
    elem = torch.finfo(ctx.dtype).bits // 8
    out: dict = {"stream_copy": {"bytes": [], "time_us": []}, "stream_gemv": {"bytes": [], "time_us": []}}
    for nbytes in sizes:
        calls = 8 if nbytes >= (256 << 20) else 32 if nbytes >= (16 << 20) else 64
        half = nbytes // 2  # a copy reads half and writes half of the bytes it moves
        ring = _ring(nbytes, ring_bytes, calls)
        src = [torch.empty(half, dtype=torch.uint8, device=ctx.device).fill_(1) for _ in range(ring)]
        dst = [torch.empty(half, dtype=torch.uint8, device=ctx.device) for _ in range(ring)]
        kernels = [(lambda i=i: dst[i % ring].copy_(src[i % ring])) for i in range(calls)]
        out["stream_copy"]["bytes"].append(2 * half)
        out["stream_copy"]["time_us"].append(_sig(_per_kernel_seconds(ctx, kernels) * 1e6))
        del src, dst
        n = max(1, nbytes // (k * elem))
        weights = [torch.empty(k, n, dtype=ctx.dtype, device=ctx.device).normal_() for _ in range(ring)]
        x = torch.randn(1, k, dtype=ctx.dtype, device=ctx.device)
        y = torch.empty(1, n, dtype=ctx.dtype, device=ctx.device)
        kernels = [(lambda i=i: torch.matmul(x, weights[i % ring], out=y)) for i in range(calls)]
        out["stream_gemv"]["bytes"].append(k * n * elem)
        out["stream_gemv"]["time_us"].append(_sig(_per_kernel_seconds(ctx, kernels) * 1e6))
        del weights
    gemm: dict = {"m": [], "n": [], "k": [], "time_us": []}
    for kk, nn in (TINY_GEMM_KN if ctx.tiny else GEMM_KN):
        w_ring = _ring(kk * nn * elem, ring_bytes, 16)
        weights = [torch.empty(kk, nn, dtype=ctx.dtype, device=ctx.device).normal_() for _ in range(w_ring)]
        for m in (TINY_GEMM_M if ctx.tiny else GEMM_M):
            a = torch.randn(m, kk, dtype=ctx.dtype, device=ctx.device)
            c = torch.empty(m, nn, dtype=ctx.dtype, device=ctx.device)
            kernels = [(lambda i=i: torch.matmul(a, weights[i % w_ring], out=c)) for i in range(16)]
            for key, value in (("m", m), ("n", nn), ("k", kk)):
                gemm[key].append(value)
            gemm["time_us"].append(_sig(_per_kernel_seconds(ctx, kernels) * 1e6))
        del weights
    out["gemm"] = gemm
    return out


# ---------------------------------------------------------------- minimal Llama-family decoder

class TinyLlama:
    """A Llama-family decoder with random weights and a static KV cache, just enough to time it.

    Per layer: RMSNorm, fused QKV projection, rotary embeddings (rotate-half form), grouped-query
    attention over a preallocated KV cache, output projection, RMSNorm and a SwiGLU MLP; then a
    final RMSNorm and the LM head on the last position. Token and position inputs are tensors, so
    one decode step can be captured into a CUDA graph.
    """

    def __init__(self, cfg: dict, ctx: _Ctx, max_batch: int, max_len: int, seed: int = 0):
        torch = ctx.torch
        self.torch, self.ctx = torch, ctx
        self.layers_n = int(cfg["layers"])
        self.hidden = int(cfg["hidden"])
        self.heads = int(cfg["heads"])
        self.kv_heads = int(cfg.get("kv_heads", self.heads))
        self.ffn = int(cfg["ffn"])
        self.vocab = int(cfg["vocab"])
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise ValueError(f"model config {cfg}: hidden must divide by heads and heads by kv_heads")
        self.head_dim = self.hidden // self.heads
        if self.head_dim % 2:
            raise ValueError(f"model config {cfg}: head dimension {self.head_dim} must be even for RoPE")
        self.max_len = max_len
        dev, dt = ctx.device, ctx.dtype
        gen = torch.Generator(device=dev).manual_seed(seed)

        def weight(rows: int, cols: int):
            w = torch.empty(rows, cols, dtype=dt, device=dev)
            return w.normal_(0.0, rows ** -0.5, generator=gen)

        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        self.embed = weight(self.vocab, self.hidden)
        self.blocks = []
        for _ in range(self.layers_n):
            self.blocks.append({
                "attn_norm": torch.ones(self.hidden, dtype=dt, device=dev),
                "wqkv": weight(self.hidden, q_out + 2 * kv_out),
                "wo": weight(q_out, self.hidden),
                "mlp_norm": torch.ones(self.hidden, dtype=dt, device=dev),
                "w_gate_up": weight(self.hidden, 2 * self.ffn),
                "w_down": weight(self.ffn, self.hidden),
            })
        self.final_norm = torch.ones(self.hidden, dtype=dt, device=dev)
        self.lm_head = weight(self.hidden, self.vocab)
        cache_shape = (max_batch, self.kv_heads, max_len, self.head_dim)
        self.k_cache = [torch.zeros(cache_shape, dtype=dt, device=dev) for _ in range(self.layers_n)]
        self.v_cache = [torch.zeros(cache_shape, dtype=dt, device=dev) for _ in range(self.layers_n)]
        half = self.head_dim // 2
        freqs = 1.0 / (10000.0 ** (torch.arange(half, device=dev, dtype=torch.float32) / half))
        angles = torch.arange(max_len, device=dev, dtype=torch.float32)[:, None] * freqs[None, :]
        angles = torch.cat([angles, angles], dim=-1)  # [max_len, head_dim]
        self.cos, self.sin = angles.cos().to(dt), angles.sin().to(dt)
        self.positions = torch.arange(max_len, device=dev)

    def parameters_count(self) -> int:
        tensors = [self.embed, self.final_norm, self.lm_head] + [t for b in self.blocks for t in b.values()]
        return sum(t.numel() for t in tensors)

    def _rms_norm(self, x, gain, eps: float = 1e-5):
        xf = x.float()
        return (xf * self.torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * gain

    def _rope(self, x, cos, sin):
        half = x.shape[-1] // 2
        rotated = self.torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def forward(self, tokens, start):
        """Logits [B, vocab] of the last position.

        ``tokens`` [B, T]; ``start`` a one-element long tensor, the position of ``tokens[:, 0]``.
        T > 1 is a prefill into an empty cache (causal attention over the prompt); T == 1 is a
        decode step attending to cache positions 0..start.
        """
        torch = self.torch
        F = torch.nn.functional
        batch, steps = tokens.shape
        hd, nh, nkv = self.head_dim, self.heads, self.kv_heads
        pos = start + self.positions[:steps]
        cos, sin = self.cos[pos], self.sin[pos]  # [T, hd], broadcast over batch and heads
        gqa = nkv != nh
        mask = (self.positions <= start).view(1, 1, 1, -1) if steps == 1 else None
        x = self.embed[tokens]
        for i, blk in enumerate(self.blocks):
            qkv = self._rms_norm(x, blk["attn_norm"]) @ blk["wqkv"]
            q, k, v = qkv.split([nh * hd, nkv * hd, nkv * hd], dim=-1)
            q = self._rope(q.view(batch, steps, nh, hd).transpose(1, 2), cos, sin)
            k = self._rope(k.view(batch, steps, nkv, hd).transpose(1, 2), cos, sin)
            v = v.view(batch, steps, nkv, hd).transpose(1, 2)
            k_all, v_all = self.k_cache[i][:batch], self.v_cache[i][:batch]
            k_all.index_copy_(2, pos, k)
            v_all.index_copy_(2, pos, v)
            if steps == 1:
                attn = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, enable_gqa=gqa)
            else:
                attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
            x = x + attn.transpose(1, 2).reshape(batch, steps, nh * hd) @ blk["wo"]
            gate, up = (self._rms_norm(x, blk["mlp_norm"]) @ blk["w_gate_up"]).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ blk["w_down"]
        return self._rms_norm(x[:, -1], self.final_norm) @ self.lm_head


def measure_model(ctx: _Ctx, cfg: dict) -> dict:
    """Prefill and decode latency (ms) of one decoder config with random weights.

    For each batch size B: ``prefill_ms_bs{B}`` (one forward over a ``prompt``-token prompt) and
    ``decode_eager_ms_per_step_bs{B}`` (``decode_steps`` greedy steps issued op by op, time / steps);
    on CUDA also ``decode_graph_ms_per_step_bs{B}`` with each step replayed from one CUDA graph.
    ``config`` records the shape that was timed and ``cache_positions`` the static KV cache every decode
    step attends to (under a mask), so that the run can be fitted later from its JSON alone.
    ``cfg`` holds layers/hidden/heads/kv_heads/ffn/vocab and may override prompt, decode_steps and
    batches.
    """
    torch = ctx.torch
    run = {**(TINY_MODEL_RUN if ctx.tiny else MODEL_RUN), **{k: cfg[k] for k in MODEL_RUN if k in cfg}}
    prompt, steps, batches = int(run["prompt"]), int(run["decode_steps"]), tuple(int(b) for b in run["batches"])
    # the graph warm-up and capture run a few extra steps past the timed ones
    model = TinyLlama(cfg, ctx, max(batches), prompt + steps + 4)
    out: dict = {"params_B": _sig(model.parameters_count() / 1e9), "prompt": prompt, "decode_steps": steps,
                 "cache_positions": model.max_len,
                 "config": {"layers": model.layers_n, "hidden": model.hidden, "heads": model.heads,
                            "kv_heads": model.kv_heads, "ffn": model.ffn, "vocab": model.vocab}}
    gen = torch.Generator(device=ctx.device).manual_seed(1)
    with torch.no_grad():
        for batch in batches:
            prompt_tokens = torch.randint(0, model.vocab, (batch, prompt), device=ctx.device, generator=gen)
            zero = torch.zeros(1, dtype=torch.long, device=ctx.device)
            out[f"prefill_ms_bs{batch}"] = _sig(ctx.time(lambda: model.forward(prompt_tokens, zero), reps=3, warmup=1) * 1e3)
            model.forward(prompt_tokens, zero)  # leave the prompt in the cache for the decode steps
            token = torch.zeros(batch, 1, dtype=torch.long, device=ctx.device)
            pos = torch.full((1,), prompt, dtype=torch.long, device=ctx.device)

            def step():
                logits = model.forward(token, pos)
                token.copy_(logits.argmax(dim=-1, keepdim=True))
                pos.add_(1)

            def decode(one_step: Callable[[], object]):
                pos.fill_(prompt)
                for _ in range(steps):
                    one_step()

            eager = ctx.time(lambda: decode(step), reps=3, warmup=1)
            out[f"decode_eager_ms_per_step_bs{batch}"] = _sig(eager / steps * 1e3)
            if ctx.cuda:
                pos.fill_(prompt)
                graph = _capture(ctx, step)
                replay = ctx.time(lambda: decode(graph.replay), reps=3, warmup=1)
                out[f"decode_graph_ms_per_step_bs{batch}"] = _sig(replay / steps * 1e3)
                del graph
    if ctx.cuda:
        out["peak_memory_GB"] = _sig(torch.cuda.max_memory_allocated(ctx.device) / 1e9)
    return out


def measure(tiny: bool = False, models: bool = False, model_configs: dict | None = None, sweep: bool = True) -> dict:
    """Measure the device PyTorch sees and return the results as a nested dict.

    Uses the first CUDA GPU if there is one, else the CPU; the CPU always gets the small
    ``tiny`` sizes (float32 instead of bf16). Every number is the median of several timed
    repetitions after warm-up runs, with the device synchronised around each repetition.

    Keys: ``device``, ``name``, ``torch``, ``tiny``, ``memory_GB`` (GPU memory from the CUDA device
    properties, or host RAM on the CPU); ``hbm`` {``d2d_GBps_rw``}: device-to-device copy, bytes
    read + written per second; ``gemm`` {``bf16_TFLOPs``}: n x n x n GEMM rate; ``launch``
    {``eager_us_per_kernel``, ``graph_us_per_kernel`` (CUDA)}: cost per tiny kernel; ``h2d``
    {``pinned_GBps``, ``pageable_GBps``} (CUDA only; empty on the CPU): host-to-device copy;
    with ``sweep=True`` (default), ``sweep`` {``stream_copy``, ``stream_gemv``, ``gemm``}: the measured
    curves (see :func:`measure_sweeps`);
    with ``models=True``, ``models`` {name: {...}}: prefill and per-step decode latency in ms of
    a random-weight Llama-family decoder per config (see :func:`measure_model`). ``model_configs``
    maps names to configs; by default the Llama-2-7B and Mistral-7B shapes, or a 2-layer,
    hidden-64 model when tiny. A model that fails (out of memory, say) gets ``{"error": ...}``
    and the others still run.
    """
    torch = _torch()
    ctx = _Ctx(tiny)
    started = time.perf_counter()
    result = _info(ctx)
    result["hbm"] = measure_hbm(ctx)
    result["gemm"] = measure_gemm(ctx)
    result["launch"] = measure_launch(ctx)
    result["h2d"] = measure_h2d(ctx)
    if sweep:
        result["sweep"] = measure_sweeps(ctx)
    if models:
        configs = model_configs if model_configs is not None else (TINY_MODELS if ctx.tiny else DEFAULT_MODELS)
        result["models"] = {}
        if ctx.cuda:  # peak_memory_GB then counts the model alone, not the buffers above
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(ctx.device)
        for name, cfg in configs.items():
            try:
                result["models"][name] = measure_model(ctx, cfg)
            except (RuntimeError, ValueError, KeyError) as exc:  # OOM or a bad config: keep the rest
                result["models"][name] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
            finally:
                if ctx.cuda:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(ctx.device)
    result["wall_s"] = _sig(time.perf_counter() - started, 3)
    return result


# ---------------------------------------------------------------- platform file

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


def _usable(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def measured_values(measurement: dict) -> dict[str, float]:
    """The ``measured`` block of a platform file: unit-suffixed keys for the values that were measured."""
    out = {}
    for section, key, platform_key in MEASURED_KEYS:
        value = (measurement.get(section) or {}).get(key)
        if _usable(value):
            out[platform_key] = float(value)
    return out


def platform_yaml(measurement: dict, name: str, hbm_capacity_GB: float | None = None,
                  hbm_bandwidth_GBps: float | None = None, peak_bf16_TFLOPs: float | None = None,
                  host_link_GBps: float | None = None, nvlink_bandwidth_GBps: float = 0,
                  board_power_W: float | None = None, idle_power_W: float | None = None) -> dict:
    """Build a one-device ``kind: gpu`` platform mapping from a :func:`measure` result.

    The datasheet values given by the caller go to ``device.published``; the measured ones to
    ``device.measured`` (``hbm_copy_GBps``, ``gemm_bf16_TFLOPs``, ``launch_eager_us``,
    ``launch_graph_us``, ``h2d_pinned_GBps``, ``h2d_pageable_GBps``; only those measured); the measured
    sweeps to ``device.curves`` (see :func:`measured_curves`).
    A datasheet value left as ``None`` is filled in: ``hbm_capacity_GB`` from the CUDA device
    properties (published) or, on a CPU run, the host RAM (assumed); ``hbm_bandwidth_GBps``,
    ``peak_bf16_TFLOPs`` and ``host_link_GBps`` from the matching measured value, under
    ``device.assumed`` (``host_link_GBps`` is left out when no host link was measured).
    ``nvlink_bandwidth_GBps`` is written only when above 0. With ``board_power_W`` (the datasheet limit)
    the file gets a ``power`` block (:func:`power_block`), so that ``--energy`` works on it. Raises
    ``ValueError`` when a required value can be neither taken nor filled in.
    """
    measured = measured_values(measurement)
    published: dict[str, float] = {}
    assumed: dict[str, float] = {}
    on_gpu = measurement.get("device") == "cuda"

    if hbm_capacity_GB is not None:
        published["hbm_capacity_GB"] = float(hbm_capacity_GB)
    elif _usable(measurement.get("memory_GB")):
        (published if on_gpu else assumed)["hbm_capacity_GB"] = float(measurement["memory_GB"])
    else:
        raise ValueError("no HBM capacity: give hbm_capacity_GB (--hbm-capacity-GB)")

    stand_ins = (("hbm_bandwidth_GBps", hbm_bandwidth_GBps, "hbm_copy_GBps"),
                 ("peak_bf16_TFLOPs", peak_bf16_TFLOPs, "gemm_bf16_TFLOPs"),
                 ("host_link_GBps", host_link_GBps, "h2d_pinned_GBps"))
    for key, given, measured_key in stand_ins:
        if given is not None:
            published[key] = float(given)
        elif measured_key in measured:
            assumed[key] = measured[measured_key]
        elif key != "host_link_GBps":
            raise ValueError(f"no {key}: give it, or measure {measured_key}")
    if nvlink_bandwidth_GBps:
        published["nvlink_bandwidth_GBps"] = float(nvlink_bandwidth_GBps)

    for block in (published, assumed):
        for key, value in block.items():
            if not _usable(value):
                raise ValueError(f"{key}: got {value!r}; allowed: a finite number > 0")

    details = [f"torch {measurement['torch']}" if measurement.get("torch") else "",
               f"CUDA {measurement['cuda']}" if measurement.get("cuda") else "",
               f"device {measurement.get('device', '?')}",
               "tiny sizes" if measurement.get("tiny") else ""]
    gemm_dtype = (measurement.get("gemm") or {}).get("dtype")
    if gemm_dtype and gemm_dtype != "bfloat16":
        details.append(f"GEMM in {gemm_dtype}")
    description = (f"{measurement.get('name', 'unknown device')}, measured with rdusim calibrate-gpu ("
                   + ", ".join(d for d in details if d) + ")")
    if assumed:
        description += "; assumed (no datasheet value given): " + ", ".join(sorted(assumed))
    device = {"published": published, "assumed": assumed, "measured": measured}
    curves = measured_curves(measurement)
    if curves:
        device["curves"] = curves
    mapping = {
        "name": name,
        "kind": "gpu",
        "description": description,
        "devices": 1,
        "device": device,
    }
    if board_power_W is not None:
        mapping["power"] = power_block(board_power_W, idle_power_W)
    elif idle_power_W is not None:
        raise ValueError("idle_power_W needs board_power_W (--board-power-W): the power block needs the board limit")
    return mapping


def power_block(board_power_W: float, idle_power_W: float | None = None) -> dict:
    """A platform's ``power`` block from the datasheet board limit given on the command line and the idle
    draw (given, or assumed at :func:`rdusim.core.power.assumed_idle_share` of the limit); the
    activity model's fractions stay rdusim/data/power_model.yaml's defaults (nothing is fitted here)."""
    for key, value in (("board_power_W", board_power_W), ("idle_power_W", idle_power_W)):
        if value is not None and not _usable(value):
            raise ValueError(f"{key}: got {value!r}; allowed: a finite number > 0")
    if idle_power_W is not None and idle_power_W >= board_power_W:
        raise ValueError(f"idle_power_W: got {idle_power_W:g}; allowed: below board_power_W ({board_power_W:g})")
    given = {"board_power_W": float(board_power_W)}
    sources = {"board_power_W": "datasheet value given to rdusim calibrate-gpu (--board-power-W)"}
    if idle_power_W is not None:
        given["idle_power_W"] = float(idle_power_W)
        sources["idle_power_W"] = "given to rdusim calibrate-gpu (--idle-power-W)"
        return {"published": given, "sources": sources}
    share = assumed_idle_share()
    sources["idle_power_W"] = (f"assumed: {share:.0%} of the board limit (no --idle-power-W given), "
                               "as the packaged GPU platforms assume it")
    return {"published": given, "assumed": {"idle_power_W": round(share * float(board_power_W), 1)},
            "sources": sources}


def measured_curves(measurement: dict) -> dict:
    """The ``curves`` block of a platform file: the sweeps of a :func:`measure` result whose every value is
    a finite number > 0 (the GPU model reads them with :func:`baselines.gpu.read_curves`)."""
    out = {}
    for name, curve in (measurement.get("sweep") or {}).items():
        if isinstance(curve, dict) and curve and all(
                isinstance(v, list) and len(v) >= 2 and all(_usable(x) for x in v) for v in curve.values()):
            out[name] = {key: [float(x) for x in values] for key, values in curve.items()}
    return out


# constant of the GPU model -> key of the platform's ``fitted`` block, and the factor from SI
FITTED_KEYS = {"stream_efficiency": ("stream_efficiency_fraction", 1.0),
               "gemm_efficiency": ("gemm_efficiency_fraction", 1.0),
               "kernel_ramp": ("kernel_ramp_us", 1e6), "eager_host": ("eager_host_us", 1e6)}


def fit_platform(measurement: dict, mapping: dict) -> tuple[dict, pd.DataFrame]:
    """Fit the GPU model's constants to the model timings of ``measurement`` on the platform ``mapping``
    (from :func:`platform_yaml` of the same run) and return the mapping with ``device.fitted`` added, and
    the fitted points (measured vs predicted). Raises :class:`ConfigError` when there is nothing to fit."""
    with tempfile.TemporaryDirectory() as tmp:
        unfitted = load_platform(str(write_platform(Path(tmp) / "unfitted.yaml", mapping)))
        const, table = fit_measurement(measurement, unfitted)
    fitted = {}
    for name in FITTED:  # fractions to 4 significant digits, times to the nanosecond
        key, factor = FITTED_KEYS[name]
        value = float(getattr(const, name)) * factor
        fitted[key] = _sig(value) if factor == 1.0 else round(value, 3)
    device = {**mapping["device"], "fitted": fitted}
    if "curves" in device:  # keep the curves last: the long lists at the end of the file
        device["curves"] = device.pop("curves")
    description = mapping["description"] + "; model constants fitted to its own prefill and decode timings"
    return {**mapping, "description": description, "device": device}, table


def fit_lines(table: pd.DataFrame) -> list[str]:
    """One line per fitted point: model, mode, phase, batch, measured and predicted ms, error."""
    return [f"{r.model} {r.mode} {r.phase} batch {r.batch}: measured {r.measured_ms:.4g} ms, "
            f"model {r.predicted_ms:.4g} ms ({r.rel_err:+.1%})" for r in table.itertuples()]


def write_platform(path: str | os.PathLike, mapping: dict, fit_table: pd.DataFrame | None = None) -> Path:
    """Write a platform mapping (as built by :func:`platform_yaml` or :func:`fit_platform`) to ``path`` as YAML.

    A comment header says where the values come from and why each ``assumed`` value is one; with
    ``fit_table`` (from :func:`fit_platform`) it lists every fitted point, measured against predicted.
    Missing parent folders are created. Returns the path written.
    """

    path = Path(path)
    lines = ["# Platform written by `rdusim calibrate-gpu`.",
             "# published: datasheet values given on the command line (or the CUDA device properties);",
             "# measured: this run (median of repetitions after warm-up);",
             "# curves: the streaming and GEMM sweeps of this run (time per kernel replayed from a CUDA graph)."]
    if "fitted" in (mapping.get("device") or {}):
        lines += ["# fitted: the GPU model's constants (names as in baselines/data/gpu_constants.yaml) fitted to this",
                  "#   run's own prefill and decode timings by robust least squares (baselines/calibration.py); for",
                  "#   this GPU they replace the packaged constants and take precedence over the curves."]
        if fit_table is not None and len(fit_table):
            err = fit_table.rel_err.abs()
            lines.append(f"#   {len(fit_table)} points, median |error| {err.median():.1%}, max |error| {err.max():.1%}:")
            lines += [f"#   {line}" for line in fit_lines(fit_table)]
    for key in (mapping.get("device") or {}).get("assumed") or {}:
        lines.append(f"# assumed {key}: {ASSUMED_REASONS.get(key, 'not given; stand-in value')}.")
    body = yaml.safe_dump(mapping, sort_keys=False, default_flow_style=False, width=1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + body)
    return path


def write_checked(path: Path, mapping: dict, fit_table: pd.DataFrame | None = None) -> Path:
    """:func:`write_platform` through a temporary file next to ``path`` that is first read back as ``rdusim
    predict`` reads it (the platform loader and the GPU model's device): a file this refuses is never left at
    ``path``. Errors name the field of the platform that was refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".yaml")
    os.close(fd)
    try:
        write_platform(tmp, mapping, fit_table)
        try:
            GpuDevice.from_platform(load_platform(tmp))
        finally:
            load_platform.cache_clear()
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError("--out", str(path), f"a writable file path ({exc.strerror})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="rdusim calibrate-gpu", formatter_class=DefaultsHelpFormatter,
        description="Measure this machine's GPU with PyTorch and write an rdusim platform file; with --models, "
                    "also fit the GPU model's constants to the measured prefill and decode times.")
    p.add_argument("--out", required=True, metavar="PATH.yaml", help="platform file to write")
    p.add_argument("--from-json", metavar="MEASUREMENT.json", dest="from_json",
                   help="measure nothing: rebuild the platform file (and fit its constants) from a measurement "
                        "saved with --json; needs no GPU and no PyTorch")
    p.add_argument("--name", help="platform name (default: from the device name)")
    p.add_argument("--tiny", action="store_true", help="small sizes (a quick dry run; always on for the CPU)")
    p.add_argument("--models", action="store_true", help="also time prefill and decode of Llama-family decoders, and fit the GPU model's constants to them")
    p.add_argument("--no-sweep", action="store_true", help="skip the streaming and GEMM sweeps (the measured curves)")
    p.add_argument("--json", metavar="PATH", help="also write the raw measurement as JSON")
    p.add_argument("--hbm-capacity-GB", type=number_arg("hbm-capacity-GB", 1e-3, 1e5), dest="hbm_capacity_GB",
                   help="datasheet HBM capacity (default: CUDA device properties)")
    p.add_argument("--hbm-bandwidth-GBps", type=number_arg("hbm-bandwidth-GBps", 1e-3, 1e5), dest="hbm_bandwidth_GBps",
                   help="datasheet HBM bandwidth (default: the measured copy rate, marked assumed)")
    p.add_argument("--peak-bf16-TFLOPs", type=number_arg("peak-bf16-TFLOPs", 1e-3, 1e5), dest="peak_bf16_TFLOPs",
                   help="datasheet dense bf16 peak (default: the measured GEMM rate, marked assumed)")
    p.add_argument("--host-link-GBps", type=number_arg("host-link-GBps", 1e-3, 1e5), dest="host_link_GBps",
                   help="datasheet host link bandwidth per direction (default: measured pinned H2D, marked assumed)")
    p.add_argument("--nvlink-GBps", type=number_arg("nvlink-GBps", 0, 1e5), default=0.0, dest="nvlink_GBps",
                   help="datasheet NVLink bandwidth per GPU (default: none)")
    p.add_argument("--board-power-W", type=number_arg("board-power-W", 1, 1e5), dest="board_power_W",
                   help="datasheet board power limit (TDP); writes a power block so that --energy works "
                        "(default: none, no power block)")
    p.add_argument("--idle-power-W", type=number_arg("idle-power-W", 0.1, 1e5), dest="idle_power_W",
                   help="idle draw with a CUDA context, with --board-power-W (default: assumed 10%% of the limit)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``rdusim calibrate-gpu``: measure (or read ``--from-json``), fit the model constants to the model
    timings if there are any, write the platform YAML (and the raw JSON); exit status.

    0 on success; 2 with one line on stderr when PyTorch is missing or a value is unusable.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.from_json and (args.json or args.tiny or args.models or args.no_sweep):
        parser.error("--from-json measures nothing: it takes no --json, --tiny, --models or --no-sweep")
    try:
        out_path = writable_file(args.out, "--out")  # before anything is measured or fitted
        if args.json:
            writable_file(args.json, "--json")
        if args.from_json:
            result = read_measurement(args.from_json)
        else:
            try:
                _torch()
            except ImportError:
                print(TORCH_MISSING, file=sys.stderr)
                return 2
            result = measure(tiny=args.tiny, models=args.models, sweep=not args.no_sweep)
            if args.json:
                json_path = Path(args.json)
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(result, indent=1) + "\n")
        mapping = platform_yaml(result, args.name or _slug(str(result.get("name", "gpu"))),
                                hbm_capacity_GB=args.hbm_capacity_GB,
                                hbm_bandwidth_GBps=args.hbm_bandwidth_GBps,
                                peak_bf16_TFLOPs=args.peak_bf16_TFLOPs,
                                host_link_GBps=args.host_link_GBps,
                                nvlink_bandwidth_GBps=args.nvlink_GBps,
                                board_power_W=args.board_power_W, idle_power_W=args.idle_power_W)
        table = None
        if any(isinstance(v, dict) and "error" not in v for v in (result.get("models") or {}).values()):
            mapping, table = fit_platform(result, mapping)
        path = write_checked(out_path, mapping, table)
    except (ValueError, ConfigError) as exc:
        print(f"rdusim calibrate-gpu: error: {exc}", file=sys.stderr)
        return 2
    measured = mapping["device"]["measured"]
    print(f"{result.get('name')} ({result.get('device')}): "
          + ", ".join(f"{k}={v:g}" for k, v in measured.items()))
    for model, values in (result.get("models") or {}).items():
        print(f"{model}: " + ", ".join(f"{k}={v}" for k, v in values.items() if k != "config"))
    if table is not None:
        print("fitted " + ", ".join(f"{k}={v:g}" for k, v in mapping["device"]["fitted"].items()) + ":")
        print("\n".join(f"  {line}" for line in fit_lines(table)))
    else:
        print("no model timings: constants not fitted (measure with --models to fit them)")
    print(f"wrote {path}" + (f" and {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
