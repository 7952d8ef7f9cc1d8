"""Compile every numba kernel once and store it in numba's on-disk cache (``cache=True``).

A fresh clone has no compiled kernels: without this step each of the pipeline's parallel jobs compiles
the same functions (minutes per job on a small machine). The pipeline's first job (rule
``numba_kernels``) runs :func:`warm_numba_cache` and every job that runs a kernel waits for it;
``python -m rdusim.scenarios.warm`` does it by hand. Each call below is the smallest run of one code
path that the pipeline uses, with the same argument types (numba's cache is keyed by the exact types,
contiguity included: :func:`rdusim.scenarios.predict_light.gpu_times` passes every caller's arrays
C-contiguous and its scalars as floats), so the jobs then load the kernels instead of compiling them.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from benchmarks.decoder import workload_graph
from benchmarks.models import get_model
from rdusim.scenarios.engine import load_engine_settings, run_instance, step_costs
from rdusim.scenarios.predict import predict
from rdusim.scenarios.serve import poisson_requests, simulate
from rdusim.scenarios.sweep import evaluate_points
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.run import evaluate_modes

# One sweep point (the default sweep's first values), one row per platform family and GPU stack kind
# (the article's fused one and a 2024 engine's, whose decode attention runs another kernel path).
SWEEP_POINT = dict(hbm_capacity_GB=64, hbm_bandwidth_GBps=2000, ddr_capacity_TB=1.5, ddr_to_hbm_GBps=125,
                   host_link_GBps=64, experts=100, batch=8, gen=20, zipf=1.0)
PREDICT_ROWS = [dict(platform="h100-sxm", model="llama2-7b", batch=1, tp=1, prompt=128, gen=8, execution="fused"),
                dict(platform="dgx-h100", model="llama2-7b", batch=1, tp=8, prompt=128, gen=8),  # a 2024 engine's stack
                dict(platform="sn40l-node", model="llama2-7b", batch=1, tp=8, prompt=128, gen=8, execution="fused-ho")]


def warm_numba_cache() -> float:
    """Run each numba-compiled path once (prediction frames, the SN40L graph evaluator, the serving loop,
    one sweep point, the serving engine); returns the seconds it took (a few when the cache is warm already)."""
    start = time.perf_counter()
    predict(pd.DataFrame(PREDICT_ROWS))
    evaluate_modes(workload_graph(get_model("llama2-7b"), "decode", 1, 128, tp=8), RduChip.from_platform("sn40l"))
    simulate("sn40l-node", 10, poisson_requests(1.0, 20, 10, seed=0))
    evaluate_points(pd.DataFrame([SWEEP_POINT]))
    n, engine = 4, load_engine_settings()  # the iteration-level serving engine: four requests on one H100
    run_instance(np.arange(n, dtype=float), np.full(n, 128), np.full(n, 8), "prefill-first",
                 step_costs("h100-sxm", "llama2-7b", 1), engine["max_num_seqs"], engine["prefill_token_budget"])
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"rdusim: numba kernels compiled and cached in {warm_numba_cache():.1f} s", file=sys.stderr)
