"""rdusim predict (CLI) and rdusim.scenarios.predict (pandas) agree, are exact, and refuse bad input clearly."""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from baselines.gpu import GpuConstants, GpuDevice, request_overhead, total_time
from baselines.lowering import lower
from benchmarks.decoder import workload_graph
from benchmarks.models import get_model
from rdusim.core.errors import ConfigError
from rdusim.scenarios.predict import gpu_template, predict, predict_one
from rdusim.scenarios.predict_light import gpu_rows_reference, gpu_times
from rdusim.sn40l.chip import RduChip
from rdusim.sn40l.run import evaluate

CONST = GpuConstants.load()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "rdusim.cli", "predict", *args], capture_output=True, text=True)


@pytest.mark.parametrize("platform,model,batch,tp,prompt,gen,mode", [
    ("h100-sxm", "llama2-7b", 1, 1, 128, 20, "cuda-graph"),
    ("dgx-h100", "llama2-70b", 8, 8, 512, 64, "fused"),
    ("a100-sxm", "mistral-7b", 4, 1, 300, 100, "eager"),
    ("dgx-a100", "falcon-40b", 2, 8, 1000, 50, "fused"),
])
def test_gpu_templates_equal_full_graph_evaluation(platform, model, batch, tp, prompt, gen, mode):
    # the full-graph evaluation is the fused mode with NeMo 2023's runtime work (no stack kernel terms)
    out = predict_one(platform, model, batch, tp, prompt, gen, mode, stack="nemo-2023" if mode == "fused" else None)
    dev = GpuDevice.from_platform(platform, CONST)
    m = get_model(model)
    pre = total_time(lower(workload_graph(m, "prefill", batch, prompt, tp, attention_impl="sdpa"), mode), dev, CONST,
                     batch) + request_overhead(mode, CONST)
    dec = total_time(lower(workload_graph(m, "decode", batch, prompt + gen // 2, tp, attention_impl="sdpa"), mode),
                     dev, CONST, batch)
    assert out["ttft_ms"] == pytest.approx(pre * 1e3, rel=1e-9)
    assert out["decode_ms_per_token"] == pytest.approx(dec * 1e3, rel=1e-9)
    assert out["total_ms"] == pytest.approx(out["ttft_ms"] + gen * out["decode_ms_per_token"])


def test_rdu_prediction_is_the_sn40l_model():
    out = predict_one("sn40l-node", "llama2-7b", 1, 8, 128, 20, stack="kernels")
    assert out["execution"] == "fused-ho"
    chip = RduChip.from_platform("sn40l-node")
    dec = evaluate(workload_graph(get_model("llama2-7b"), "decode", 1, 138, 8), chip, "fused-ho")
    assert out["decode_ms_per_token"] == pytest.approx(dec.time_s * 1e3)


def test_cli_and_api_agree():
    proc = cli("--platform", "dgx-h100", "--model", "llama2-13b", "--batch", "2", "--tp", "4", "--prompt", "256",
               "--gen", "32", "--execution", "cuda-graph", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = predict_one("dgx-h100", "llama2-13b", 2, 4, 256, 32, "cuda-graph")
    for key in ("ttft_ms", "decode_ms_per_token", "total_ms", "weight_bytes", "fits"):
        assert got[key] == pytest.approx(want[key]), key


def test_defaults_and_best_mode():
    out = predict_one("h100-sxm", "llama2-7b")
    assert (out["batch"], out["tp"], out["prompt"], out["gen"], out["execution"]) == (1, 1, 128, 128, "fused")


def test_oom_is_reported_not_raised():
    proc = cli("--platform", "a100-sxm", "--model", "bloom-176b", "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["fits"] is False and "HBM" in out["reason"] and out["ttft_ms"] is None


@pytest.mark.parametrize("args,field", [
    (["--platform", "tpu9", "--model", "llama2-7b"], "platform"),
    (["--platform", "h100-sxm", "--model", "gpt5"], "model"),
    (["--platform", "h100-sxm", "--model", "llama2-7b", "--tp", "2"], "tp"),
    (["--platform", "dgx-h100", "--model", "llama2-7b", "--tp", "16"], "tp"),
    (["--platform", "h100-sxm", "--model", "llama2-7b", "--batch", "0"], "batch"),
    (["--platform", "h100-sxm", "--model", "llama2-7b", "--prompt", "-3"], "prompt"),
    (["--platform", "h100-sxm", "--model", "llama2-7b", "--gen", "x"], "gen"),
    (["--platform", "h100-sxm", "--model", "llama2-7b", "--execution", "fused-ho"], "execution"),
])
def test_bad_input_exits_2_with_one_line(args, field):
    proc = cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "allowed" in lines[0]
    assert "Traceback" not in proc.stderr


def test_frame_api_adds_results_and_names_bad_rows():
    frame = pd.DataFrame({"platform": ["h100-sxm", "dgx-a100", "sn40l-node"], "model": ["llama2-7b"] * 3,
                          "batch": [1, 8, 8], "tp": [1, 8, 8]})
    out = predict(frame)
    cols = list(out.columns)
    start = cols.index("ttft_ms")
    assert cols[start:start + 6] == ["ttft_ms", "decode_ms_per_token", "total_ms", "weight_bytes", "fits", "reason"]
    assert {"precision", "kv_precision", "tokens_per_s_per_user"} <= set(cols)  # issue 21: every row names them
    assert out.fits.all() and (out.ttft_ms > 0).all()
    with pytest.raises(ConfigError, match="row 1: batch"):
        predict(pd.DataFrame({"platform": ["h100-sxm"] * 2, "model": ["llama2-7b"] * 2, "batch": [1, -1]}))


def test_frame_matches_row_by_row():
    frame = pd.DataFrame({"platform": "dgx-h100", "model": "mistral-7b", "batch": [1, 2, 4, 8], "tp": 8,
                          "prompt": [64, 128, 2048, 4000], "gen": [1, 10, 100, 300], "execution": "fused"})
    out = predict(frame)
    for i, r in enumerate(frame.itertuples()):
        one = predict_one(r.platform, r.model, r.batch, r.tp, r.prompt, r.gen, r.execution)
        assert out.total_ms.iloc[i] == pytest.approx(one["total_ms"], rel=1e-12)


def test_gpu_rows_kernel_gets_one_signature_from_every_caller():
    """numba's cache is keyed by exact argument types: a template just built (strided views) and one read
    from the disk cache (contiguous) must reach the kernel alike, C-contiguous arrays and float scalars,
    so that the kernel the pipeline's first job compiles is the one every job loads."""
    seen = []

    def spy(*args):
        seen.append(tuple(("C" if a.flags.c_contiguous else "A", a.dtype.str, a.ndim) if isinstance(a, np.ndarray)
                          else type(a).__name__ for a in args))
        return gpu_rows_reference(*args)

    tpl = gpu_template("llama2-7b", 1, "fused")
    strided = dataclasses.replace(tpl, prefill=np.asfortranarray(tpl.prefill), decode=np.asfortranarray(tpl.decode))
    for t, batch in ((tpl, [1, 8]), (strided, np.array([1, 8]))):
        gpu_times(t, spy, "h100-sxm", "llama2-7b", 1, "fused", GpuConstants.load(), batch, [128, 512], [20, 20])
    assert seen[0] == seen[1]
    assert all(s == ("C", "<f8", s[2]) for s in seen[0] if isinstance(s, tuple))
    assert all(s in ("float", "bool") for s in seen[0] if not isinstance(s, tuple))
