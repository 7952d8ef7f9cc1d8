"""Serving stacks (rdusim/core/stacks.py, rdusim/data/stacks): loading, errors, how they combine with
--execution, and what they add to a prediction."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from baselines.gpu import GpuConstants, GpuDevice
from rdusim.cli import main
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.core.stacks import list_stacks, load_stack, resolve_stack
from rdusim.scenarios.closed_form import collectives_per_pass, stack_work
from rdusim.scenarios.predict import predict, predict_one

REQUIRED = {"trtllm", "vllm", "pytorch-eager", "pytorch-graph", "nemo-2023", "kernels"}


def test_required_stacks_exist_with_their_kernel_execution():
    assert REQUIRED <= set(list_stacks())
    assert {n: load_stack(n).execution for n in REQUIRED} == {
        "trtllm": "fused", "vllm": "fused", "pytorch-eager": "eager", "pytorch-graph": "cuda-graph",
        "nemo-2023": "fused", "kernels": None}
    assert load_stack("kernels").applies_to == ("gpu", "rdu") and not load_stack("kernels").has_runtime


def test_nemo_2023_holds_the_calibrated_engine_constants():
    """The stack file is where NeMo's runtime work lives; the GPU constants read it from there."""
    nemo, const = load_stack("nemo-2023"), GpuConstants.load()
    assert (nemo.request, nemo.step, nemo.sequence_step) == (const.engine_request, const.engine_step,
                                                             const.engine_sequence_step)
    assert nemo.step == pytest.approx(1459.1147e-6) and nemo.sequence_step == pytest.approx(136.5838e-6)
    assert dict(nemo.basis)["step_us"].startswith("fitted:")


def test_every_term_states_meaning_and_basis():
    for name in list_stacks():
        s = load_stack(name)
        keys = [k for k, _ in s.basis]
        assert len(keys) == len(set(keys))
        assert all(b.split(":")[0] in ("fitted", "published", "assumed", "derived") for _, b in s.basis)


def test_platforms_name_their_default_stack():
    """The DGX nodes run the 2024 TensorRT-LLM unless told (the article's scenarios name nemo-2023); single
    GPUs keep NeMo 2023 (the power model's H100 anchor is a default prediction of h100-sxm)."""
    assert {load_platform(p).default_stack for p in ("dgx-a100", "dgx-h100", "dgx-h200")} == {"trtllm"}
    assert load_platform("h100-sxm").default_stack == "nemo-2023"
    assert load_platform("sn40l-node").default_stack == "sambaflow-2024"  # issue 20


@pytest.mark.parametrize("execution, stack, expected", [
    (None, None, ("nemo-2023", "fused")),
    ("fused", None, ("nemo-2023", "fused")),
    ("eager", None, ("kernels", "eager")),         # what --execution eager gave before stacks
    (None, "vllm", ("vllm", "fused")),
    ("fused", "trtllm", ("trtllm", "fused")),
    ("cuda-graph", "kernels", ("kernels", "cuda-graph")),
    (None, "pytorch-eager", ("pytorch-eager", "eager")),
])
def test_execution_and_stack_combine(execution, stack, expected):
    key, _, mode = resolve_stack("gpu", "nemo-2023", execution, stack)
    assert (key, mode) == expected


@pytest.mark.parametrize("kind, execution, stack, field", [
    ("gpu", "eager", "vllm", "execution"),
    ("rdu", None, "vllm", "stack"),
    ("gpu", "fused-ho", None, "execution"),
    ("gpu", None, "no-such-stack", "stack"),
])
def test_incompatible_pairs_are_one_line_errors(kind, execution, stack, field):
    with pytest.raises(ConfigError) as err:
        resolve_stack(kind, "nemo-2023" if kind == "gpu" else "kernels", execution, stack)
    assert err.value.field == field


def _stack_file(tmp_path, body):
    path = tmp_path / "mine.yaml"
    path.write_text(body)
    return str(path)


GOOD = """name: mine
applies_to: [gpu, rdu]
execution: null
runtime:
  step_us: {value: 1000, meaning: "per pass", basis: "assumed: a test"}
  request_us: {value: 5000, meaning: "per request", basis: "assumed: a test"}
"""


@pytest.mark.parametrize("body, field", [
    (GOOD.replace("step_us", "stepp_us"), "mine.runtime.stepp_us"),
    (GOOD.replace("[gpu, rdu]", "[tpu]"), "mine.applies_to"),
    (GOOD.replace("execution: null", "execution: turbo"), "mine.execution"),
    (GOOD.replace("value: 1000", "value: -1"), "mine.runtime.step_us"),
    (GOOD.replace('basis: "assumed: a test"}\n  request', 'basis: "a guess"}\n  request'), "mine.runtime.step_us.basis"),
    (GOOD.replace('meaning: "per pass", ', ""), "mine.runtime.step_us.meaning"),
    (GOOD + "colour: red\n", "mine.colour"),
])
def test_bad_stack_file_names_the_field(tmp_path, body, field):
    with pytest.raises(ConfigError) as err:
        load_stack(_stack_file(tmp_path, body))
    assert err.value.field == field


def test_user_stack_adds_its_runtime_work_on_gpu_and_rdu(tmp_path):
    """A stack file of one's own: step 1 ms per pass and 5 ms per request, exactly, on both kinds."""
    mine = _stack_file(tmp_path, GOOD)
    for platform, tp in (("dgx-h100", 1), ("sn40l-node", 8)):
        base = predict_one(platform, "llama2-7b", tp=tp, stack="kernels")
        own = predict_one(platform, "llama2-7b", tp=tp, stack=mine)
        assert own["stack"] == mine and base["stack"] == "kernels"
        assert own["ttft_ms"] - base["ttft_ms"] == pytest.approx(6.0, abs=1e-9)
        assert own["decode_ms_per_token"] - base["decode_ms_per_token"] == pytest.approx(1.0, abs=1e-9)


def test_nemo_stack_is_kernels_plus_its_terms():
    b = 4
    k = predict_one("dgx-h100", "llama2-7b", batch=b, stack="kernels", execution="fused")
    n = predict_one("dgx-h100", "llama2-7b", batch=b, stack="nemo-2023")
    s = load_stack("nemo-2023")
    assert n["decode_ms_per_token"] - k["decode_ms_per_token"] == pytest.approx((s.step + b * s.sequence_step) * 1e3)
    assert n["ttft_ms"] - k["ttft_ms"] == pytest.approx((s.request + s.step + b * s.sequence_step) * 1e3)


def test_frame_stack_column_names_each_rows_stack():
    frame = pd.DataFrame({"platform": ["dgx-h100", "dgx-h100", "sn40l-node"], "model": "llama2-7b",
                          "tp": [8, 8, 8], "stack": [None, "vllm", None]})
    out = predict(frame)
    assert list(out["stack"]) == ["trtllm", "vllm", "sambaflow-2024"]
    assert list(out["execution"]) == ["fused", "fused", "fused-ho"]


def test_cli_predict_stack_and_config_json(capsys):
    config = "tests/data/hf_configs/llama-3.1-70b.json"
    for model in ("llama3-70b", config):
        assert main(["predict", "--platform", "dgx-h100", "--model", model, "--tp", "8", "--stack", "vllm"]) == 0
        line = capsys.readouterr().out
        assert f"dgx-h100 {model} stack vllm (fused) batch 1 tp 8" in line
    a = predict_one("dgx-h100", "llama3.1-70b", tp=8, stack="vllm")
    b = predict_one("dgx-h100", config, tp=8, stack="vllm")
    assert (a["ttft_ms"], a["decode_ms_per_token"]) == (b["ttft_ms"], b["decode_ms_per_token"])


def test_cli_incompatible_pair_exits_2(capsys):
    assert main(["predict", "--platform", "dgx-h100", "--model", "llama2-7b", "--stack", "vllm",
                 "--execution", "eager"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "execution" in err and "vllm" in err


def _decode_ms(model, stack, ctx, platform="a100-sxm-40gb", batch=16):
    return predict_one(platform, model, batch=batch, prompt=ctx, gen=1, stack=stack)["decode_ms_per_token"]


def test_decode_attention_of_the_2024_engines_runs_on_cuda_cores():
    """Issue 19: trtllm, vllm, deepspeed-mii and vllm-eager cost attention over the KV cache at their FP32 share
    of the CUDA cores and at the copy rate, one value for all four. Grouped-query Mistral-7B (32 query heads
    on 8 KV heads) is then compute-bound: each added cached position costs 4 FLOPs per query head and head
    dimension per layer at 0.15 x 19.5 TFLOP/s; multi-head Llama-2-7B stays bound by its KV bytes at the copy
    rate (the A100-40GB's 1555 GB/s x the H100's copy/datasheet ratio)."""
    stacks = ["trtllm", "vllm", "deepspeed-mii", "vllm-eager"]
    assert {load_stack(s).kernel for s in stacks} == {(("attention_fp32_efficiency", 0.15), ("kv_stream_efficiency", 1.0))}
    assert all(dict(load_stack(s).basis)["attention_fp32_efficiency_fraction"].startswith("fitted:") for s in stacks)
    dev = GpuDevice.from_platform("a100-sxm-40gb")
    layers, heads, d, b, dc = 32, 32, 128, 16, 1024
    flops = layers * 4 * heads * d * b * dc
    mistral = _decode_ms("mistral-7b", "trtllm", 2048) - _decode_ms("mistral-7b", "trtllm", 1024)
    assert mistral == pytest.approx(flops / (0.15 * 19.5e12) * 1e3, rel=1e-6)
    kv = layers * 2 * heads * d * 2 * b * dc  # Llama-2-7B: 32 KV heads
    llama = _decode_ms("llama2-7b", "vllm", 2048) - _decode_ms("llama2-7b", "vllm", 1024)
    assert llama == pytest.approx(kv / dev.copy_bandwidth * 1e3, rel=1e-6)
    # the stacks without the term (NeMo 2023, kernel time) keep the GEMM and engine streaming rates
    plain = _decode_ms("llama2-7b", "kernels", 2048) - _decode_ms("llama2-7b", "kernels", 1024)
    assert plain == pytest.approx(kv / dev.engine_stream_rate * 1e3, rel=1e-6)


def test_decode_attention_on_a_gpu_without_fp32_rate_keeps_the_gemm_rate():
    dev = GpuDevice.from_platform("b200")
    assert dev.fp32_rate == 0.0
    assert dev.decode_attention_rates("fused", 0.15, None) == (dev.engine_gemm, dev.engine_stream_rate)
    assert GpuDevice.from_platform("h100-sxm").decode_attention_rates("fused", 0.15, 1.0)[0] == pytest.approx(0.15 * 67e12)


def test_scheduler_block_of_a_stack(tmp_path):
    """A stack's scheduler defaults become engine settings; a bad block names its field."""
    assert load_stack("trtllm").engine_settings() == {"batching": "inflight", "max_num_seqs": 2048,
                                                      "chunk_token_budget": 8192, "prefill_token_budget": 8192}
    assert load_stack("vllm").engine_settings() == {}
    head = "name: mine\napplies_to: [gpu]\nexecution: fused\nscheduler:\n"
    for body, field in (("  batching: {value: greedy, basis: 'assumed: x'}\n", "mine.scheduler.batching.value"),
                        ("  max_num_seqs: {value: 0, basis: 'assumed: x'}\n", "mine.scheduler.max_num_seqs.value"),
                        ("  token_budget: {value: 512}\n", "mine.scheduler.token_budget"),
                        ("  token_budget: {value: 512, basis: 'a guess'}\n", "mine.scheduler.token_budget.basis"),
                        ("  max_batch: {value: 8, basis: 'assumed: x'}\n", "max_batch")):
        path = tmp_path / "mine.yaml"
        path.write_text(head + body)
        with pytest.raises(ConfigError, match=field.replace(".", "\\.")):
            load_stack(str(path))


def test_stack_work_is_charged_the_same_everywhere():
    """One stack_work for predict, the sweep and the energy model: every runtime term, the collective term
    times the model's collectives per pass (a dense decoder's all-reduces; an MoE's all-reduces and all-to-alls)."""
    s = replace(load_stack("trtllm"), prompt_token=1e-6, collective=2e-6)
    batch, prompt = np.array([1.0, 8.0]), np.array([100.0, 1000.0])
    step, request = stack_work(s, "llama2-7b", batch, prompt, 4)
    assert step == pytest.approx(s.step + s.sequence_step * batch + s.tp_step * 3 + s.collective * 64)
    assert request == pytest.approx(s.request + s.prompt_token * batch * prompt)
    assert collectives_per_pass("llama2-7b", 1) == 0 and collectives_per_pass("falcon-40b", 2) == 60
    assert collectives_per_pass("mixtral-8x7b", 2) == 32 * 3
