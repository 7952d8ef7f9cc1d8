"""Speed of the hot paths (pytest-benchmark). Run with ``make bench``; in ``make test`` each runs once
as a smoke test. Figures are reported in the issue notes, never asserted against the clock."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import yaml

from benchmarks.decoder import workload_graph
from benchmarks.models import get_model
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.cost import (
    hw_vector,
    kernel_matrix,
    total_times_jit,
    total_times_reference,
)
from rdusim.sn40l.fusion import plan
from rdusim.sn40l.opcost import rdu_optable

CHIP = RduChip.from_platform("sn40l")


@pytest.fixture(scope="module")
def decode_kernels():
    g = workload_graph(get_model("llama2-7b"), "decode", 1, 4096, 8)
    return kernel_matrix(plan(rdu_optable(g, CHIP), CHIP, "unfused"))


@pytest.fixture(scope="module")
def configs():
    base = hw_vector(CHIP, "so")
    hws = np.vstack([base] * 1000)
    hws[:, 1] *= np.linspace(0.5, 2.0, 1000)  # sweep HBM bandwidth
    return hws


def test_kernel_cost_evaluations_jit(benchmark, decode_kernels, configs):
    """Kernel-cost evaluations per second: kernels x configurations per call."""
    total_times_jit(decode_kernels, configs[:2])  # warm-up (compilation)
    out = benchmark(total_times_jit, decode_kernels, configs)
    benchmark.extra_info["evaluations_per_call"] = decode_kernels.shape[1] * configs.shape[0]
    assert out.shape == (1000,)


def test_kernel_cost_evaluations_reference(benchmark, decode_kernels, configs):
    """The same evaluation in pure Python (the 'before' figure), on 20 configurations."""
    out = benchmark.pedantic(total_times_reference, args=(decode_kernels, configs[:20]), rounds=3, iterations=1)
    benchmark.extra_info["evaluations_per_call"] = decode_kernels.shape[1] * 20
    assert out.shape == (20,)


def test_plan_bloom_prefill(benchmark):
    """Planning (op table + fused partition + kernel summaries) of BLOOM-176B prefill, 70 layers."""
    g = workload_graph(get_model("bloom-176b"), "prefill", 1, 8192, 8)
    plan(rdu_optable(g, CHIP), CHIP, "fused")  # warm-up
    k = benchmark(lambda: plan(rdu_optable(g, CHIP), CHIP, "fused"))
    assert k.n_kernels > 70


def test_plan_bloom_prefill_reference(benchmark):
    g = workload_graph(get_model("bloom-176b"), "prefill", 1, 8192, 8)
    k = benchmark.pedantic(lambda: plan(rdu_optable(g, CHIP), CHIP, "fused", use_jit=False), rounds=2, iterations=1)
    assert k.n_kernels > 70


def test_all_table1_runs(benchmark, repo_root):
    """Building, planning and costing every Table 1 run in all three modes (Figure 6)."""
    from rdusim.report.tables import fig6_fusion

    cfg = yaml.safe_load((repo_root / "config/config.yaml").read_text())
    fig6_fusion(cfg)  # warm-up
    table = benchmark.pedantic(fig6_fusion, args=(cfg,), rounds=2, iterations=1)
    assert len(table) == 17


def test_import_time(benchmark):
    """Cold import of the SN40L model in a fresh process (numba's compiled functions come from its cache)."""
    code = "import rdusim.sn40l.run, rdusim.report.tables"

    def run():
        subprocess.run([sys.executable, "-c", code], check=True)
    benchmark.pedantic(run, rounds=3, iterations=1)


def test_predict_rows_per_second(benchmark):
    """rdusim.scenarios.predict over 100,000 GPU rows (one numba pass per platform/model/tp/mode group)."""
    import pandas as pd

    from rdusim.scenarios.predict import predict

    rng = np.random.default_rng(0)
    n = 100_000
    frame = pd.DataFrame({"platform": rng.choice(["dgx-h100", "dgx-a100", "dgx-h200"], n), "model": "llama2-7b",
                          "batch": rng.integers(1, 64, n), "tp": 8, "prompt": rng.integers(16, 3584, n),  # + gen within 4K context
                          "gen": rng.integers(1, 512, n), "execution": "fused"})
    predict(frame.head(10))  # warm-up: templates and compilation
    out = benchmark.pedantic(predict, args=(frame,), rounds=1, iterations=1)
    benchmark.extra_info["rows"] = n
    assert out.fits.all()


def test_predict_row_by_row(benchmark):
    """The same prediction one call per row (the comparison figure), on 200 rows."""
    from rdusim.scenarios.predict import predict_one

    predict_one("dgx-h100", "llama2-7b", 8, 8, 512, 64, "fused")

    def run():
        for b in range(1, 201):
            predict_one("dgx-h100", "llama2-7b", b % 64 + 1, 8, 512 + b, 64, "fused")
    benchmark.pedantic(run, rounds=1, iterations=1)


def test_serving_million_requests(benchmark):
    """Simulated requests per second: 1,000,000 requests on an SN40L node, 150 experts, Zipf 1."""
    from rdusim.scenarios.serve import poisson_requests, simulate, zipf_popularity

    trace = poisson_requests(20.0, 1_000_000, 150, 1.0, seed=0)
    pop = zipf_popularity(150, 1.0)
    simulate("sn40l-node", 150, trace.head(1000), popularity=pop)  # warm-up
    summary = benchmark.pedantic(simulate, args=("sn40l-node", 150, trace), kwargs={"popularity": pop},
                                 rounds=1, iterations=1)[0]
    benchmark.extra_info["requests"] = 1_000_000
    assert summary["requests"] == 1_000_000


def _cpu_timed(benchmark, fn, children=False):
    """``fn`` wrapped to record its CPU seconds (``cpu_s``: of this process, or of the child processes it waits for)
    in the benchmark's extra info: on a shared machine wall time includes waiting for a core, CPU time does not."""
    import resource

    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF

    def run(*args, **kwargs):
        before = resource.getrusage(who)
        out = fn(*args, **kwargs)
        after = resource.getrusage(who)
        benchmark.extra_info["cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3)
        return out
    return run


def _size(benchmark, full: int) -> int:
    """``full`` requests under ``make bench``; a tenth of a percent in ``make test`` (benchmarks disabled: a smoke test)."""
    return full if not benchmark.disabled else max(1000, full // 1000)


def test_serving_ten_million_requests(benchmark):
    """10,000,000 CoE requests in-process (SN40L node, 150 experts, Zipf 1, 20 requests/s), summary only
    (no per-request frame): issue 22's row (target < 2 s on one core)."""
    from rdusim.scenarios.serve import poisson_requests, simulate, zipf_popularity

    n = _size(benchmark, 10_000_000)
    trace = poisson_requests(20.0, n, 150, 1.0, seed=0)
    pop = zipf_popularity(150, 1.0)
    simulate("sn40l-node", 150, trace.head(1000), popularity=pop)  # warm-up
    summary = benchmark.pedantic(_cpu_timed(benchmark, simulate), args=("sn40l-node", 150, trace),
                                 kwargs={"popularity": pop, "per_request": False}, rounds=1, iterations=1)[0]
    benchmark.extra_info["requests"] = n
    assert summary["requests"] == n and 0 <= summary["hbm_hit_rate"] <= 1


def test_serve_cli_ten_million_requests(benchmark):
    """`rdusim serve --platform sn40l-node --experts 150 --zipf 1 --rate 20 --requests 10000000` as a new
    process (trace generation included): issue 22's row (target < 4 s)."""
    n = _size(benchmark, 10_000_000)
    cmd = [sys.executable, "-m", "rdusim.cli", "serve", "--platform", "sn40l-node", "--experts", "150", "--zipf", "1",
           "--rate", "20", "--requests", str(n)]
    if not benchmark.disabled:
        subprocess.run(cmd[:-1] + ["1000"], check=True, capture_output=True)  # numba caches warm
    benchmark.pedantic(_cpu_timed(benchmark, lambda: subprocess.run(cmd, check=True, capture_output=True), children=True),
                       rounds=1, iterations=1)
    benchmark.extra_info["requests"] = n


def test_serving_hundred_million_streamed(benchmark):
    """100,000,000 CoE requests streamed (:func:`simulate_poisson`: arrivals generated in chunks, summaries in
    histograms), SN40L node, 150 experts, Zipf 1, 20 requests/s: issue 22's bounded-memory row (the peak
    resident memory of the process is recorded)."""
    import resource

    from rdusim.scenarios.serve import simulate_poisson

    n = _size(benchmark, 100_000_000)
    simulate_poisson("sn40l-node", 150, 20.0, 1000, 1.0)  # warm-up
    summary = benchmark.pedantic(_cpu_timed(benchmark, simulate_poisson), args=("sn40l-node", 150, 20.0, n, 1.0),
                                 rounds=1, iterations=1)
    benchmark.extra_info["requests"] = n
    benchmark.extra_info["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert summary["requests"] == n and 0 <= summary["hbm_hit_rate"] <= 1


def test_engine_million_requests(benchmark):
    """Continuous batching of one model: 1,000,000 requests of Llama-2-7B on one H100 instance (prefill-first,
    lengths drawn from the Azure conversation slice, 5 requests/s): issue 22's row (target < 5 s)."""
    from rdusim.scenarios.serve_model import simulate_model
    from rdusim.scenarios.traces import poisson_with_lengths, read_request_trace

    lengths = read_request_trace("examples/azure_conv_2023_slice.csv")
    lengths = lengths[lengths.prompt + lengths.gen <= 4096]
    n = _size(benchmark, 1_000_000)
    trace = poisson_with_lengths(5.0, n, lengths=lengths, seed=0)
    simulate_model("dgx-h100", "llama2-7b", 1, trace.head(1000), "prefill-first", instances=1)  # warm-up
    summary = benchmark.pedantic(_cpu_timed(benchmark, simulate_model), args=("dgx-h100", "llama2-7b", 1, trace),
                                 kwargs={"instances": 1, "batching": "prefill-first"}, rounds=1, iterations=1)[0]
    benchmark.extra_info["requests"] = n
    assert summary["served"] == n


def test_sweep_points_per_second(benchmark, repo_root):
    """Design-space sweep throughput on one core (default sweep, one shard of four, caches warm)."""
    from rdusim.scenarios.sweep import run_shard

    spec = yaml.safe_load((repo_root / "config/config.yaml").read_text())["sweeps"]["default"]
    run_shard(spec, 0, 4, progress=False)  # warm-up: plans the SN40L variants once
    table = benchmark.pedantic(run_shard, args=(spec, 1, 4), kwargs={"progress": False}, rounds=1, iterations=1)
    benchmark.extra_info["points"] = len(table)


def _gpu_frame(n: int, oom: bool):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"platform": rng.choice(["dgx-h100", "dgx-a100", "dgx-h200"], n), "model": "llama2-7b",
                          "batch": rng.integers(1, 64, n), "tp": 8, "prompt": rng.integers(16, 3585, n),
                          "gen": rng.integers(1, 512, n), "execution": "fused"})
    if oom:  # single-GPU llama2-70b rows whose weights alone overflow an 80 GB card, about 28% of rows
        big = rng.random(n) < 0.28
        frame.loc[big, ["platform", "model", "tp"]] = ["h100-sxm", "llama2-70b", 1]
    return frame


def _sn40l_frame(n: int, seed: int = 1):
    """Distinct SN40L rows: half sn40l-node tp 8 fused-ho, half sn40l tp 1 (batch, prompt, gen random)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    half = n // 2
    return pd.DataFrame({"platform": ["sn40l-node"] * half + ["sn40l"] * (n - half), "model": "llama2-7b",
                         "batch": rng.integers(1, 65, n), "tp": [8] * half + [1] * (n - half),
                         "prompt": rng.integers(16, 3585, n), "gen": rng.integers(1, 513, n), "execution": "fused-ho"})


def test_predict_rows_with_oom(benchmark):
    """100,000 GPU rows of which about 28% do not fit (their reasons written in one vectorised step)."""
    from rdusim.scenarios.predict import predict

    frame = _gpu_frame(100_000, oom=True)
    predict(frame.head(50))
    out = benchmark.pedantic(predict, args=(frame,), rounds=1, iterations=1)
    benchmark.extra_info["rows"] = len(frame)
    assert 0.2 < (~out.fits).mean() < 0.35


def test_predict_sn40l_distinct_rows(benchmark):
    """10,000 distinct SN40L rows (templates rebuilt: every row plans its two passes from the one-layer
    op templates, nothing cached per row)."""
    from rdusim.scenarios.predict import predict, rdu_template

    predict(_sn40l_frame(10, seed=2))  # warm-up: numba kernels from the cache
    frame = _sn40l_frame(10_000)

    def run():
        rdu_template.cache_clear()
        return predict(frame)
    out = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["rows"] = len(frame)
    assert out.fits.any()


def test_predict_mixed_gpu_sn40l(benchmark):
    """A 50/50 GPU and SN40L frame of 100,000 rows (all SN40L rows distinct, templates rebuilt)."""
    import pandas as pd

    from rdusim.scenarios.predict import predict, rdu_template

    frame = pd.concat([_gpu_frame(50_000, oom=False), _sn40l_frame(50_000, seed=3)], ignore_index=True)
    predict(frame.head(5))

    def run():
        rdu_template.cache_clear()
        return predict(frame)
    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["rows"] = len(frame)


COLD_PREDICT = [sys.executable, "-m", "rdusim.cli", "predict", "--platform", "h100-sxm", "--model", "llama2-7b",
                "--json"]


def test_cold_predict_cli(benchmark):
    """`rdusim predict --platform h100-sxm --model llama2-7b --json` as a new process, its GPU template
    cached on disk by the warm-up run (the light path: numpy only)."""
    subprocess.run(COLD_PREDICT, check=True, capture_output=True)
    benchmark.pedantic(lambda: subprocess.run(COLD_PREDICT, check=True, capture_output=True), rounds=5, iterations=1)


def test_cold_predict_cli_uncached(benchmark, tmp_path):
    """The same command with an empty template cache each round: numba, pandas and the template build."""
    env = dict(os.environ)

    def run():
        env["RDUSIM_CACHE_DIR"] = tempfile.mkdtemp(dir=tmp_path)
        subprocess.run(COLD_PREDICT, check=True, capture_output=True, env=env)
    run()
    benchmark.pedantic(run, rounds=3, iterations=1)


def test_sweep_shard_cold(benchmark, repo_root):
    """One default-sweep shard from its first point, planning included (templates and routing caches cleared)."""
    from rdusim.scenarios import sweep
    from rdusim.scenarios.predict import rdu_template

    spec = yaml.safe_load((repo_root / "config/config.yaml").read_text())["sweeps"]["default"]
    sweep.run_shard(spec, 0, 4, progress=False)  # numba kernels loaded, GPU templates built

    def run():
        for cached in (rdu_template, sweep._rdu_times, sweep._routing):
            cached.cache_clear()
        return sweep.run_shard(spec, 1, 4, progress=False)
    table = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["points"] = len(table)
