"""Single-model serving with iteration-level batching (issue 22): agreement with predict at zero load, the
numba engine against its pure-Python twin, the KV-cache bound, policies, metrics and traces."""
import json

import numpy as np
import pandas as pd
import pytest

from rdusim.cli import main
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.scenarios.engine import _lookup, _mixed, kv_capacity_tokens, run_instance, step_costs
from rdusim.scenarios.predict import predict_one
from rdusim.scenarios.serve_model import max_rate_within, simulate_model
from rdusim.scenarios.traces import poisson_with_lengths, read_request_trace, retime

AZURE_CONV = "examples/azure_conv_2023_slice.csv"


@pytest.mark.parametrize("platform,tp", [("dgx-h100", 1), ("dgx-h100", 8), ("sn40l-node", 8)])
def test_lone_request_matches_predict(platform, tp):
    # one request at a time: TTFT is predict's prompt pass; each later token one decode step at its context
    trace = pd.DataFrame({"arrival_s": [0.0, 100.0], "prompt": [512, 512], "gen": [64, 64]})
    s, per = simulate_model(platform, "llama2-7b", tp, trace, instances=1)
    ref = predict_one(platform, "llama2-7b", 1, tp, 512, 64)
    assert s["ttft_ms_mean"] == pytest.approx(ref["ttft_ms"], rel=1e-3)
    # predict's decode is the mean step at context L + G/2; the engine steps through contexts 513..575
    assert s["tpot_ms_mean"] == pytest.approx(ref["decode_ms_per_token"], rel=0.01)


@pytest.mark.parametrize("batching", ["prefill-first", "chunked", "static", "inflight"])
def test_numba_engine_matches_python_twin(batching):
    trace = poisson_with_lengths(30.0, 300, lengths=read_request_trace(AZURE_CONV), seed=3)
    trace = trace[trace.prompt + trace.gen <= 4096]
    fast = simulate_model("dgx-h100", "llama2-7b", 1, trace, batching, instances=2)[1]
    slow = simulate_model("dgx-h100", "llama2-7b", 1, trace, batching, instances=2, use_jit=False)[1]
    pd.testing.assert_frame_equal(fast, slow)


def test_kv_cache_bounds_the_batch_and_requests_wait():
    costs = step_costs("h100-sxm", "llama2-7b", 1)
    tokens, weights, capacity = kv_capacity_tokens("h100-sxm", "llama2-7b", 1, 0.9)
    assert tokens == costs.kv_tokens and 0.9 * capacity - weights < (tokens + 1) * 2 * 32 * 4096 * 2
    n = 2000  # everything arrives at once: admission is bounded by KV tokens, not by max_num_seqs
    arrival, prompt, gen = np.zeros(n), np.full(n, 2000), np.full(n, 1000)
    first, finish, stats = run_instance(arrival, prompt, gen, "prefill-first", costs, 256, 4096)
    assert stats[6] <= tokens and stats[5] == tokens // 3000
    assert np.all(np.isfinite(finish)) and np.all(finish > first)


def test_continuous_batching_beats_static_and_chunks_delay_first_tokens():
    trace = poisson_with_lengths(5.0, 3000, prompt=1024, gen=256, seed=1)
    # under vllm (no scheduler block: serving_engine.yaml's vLLM/Sarathi defaults, 512-token chunks)
    cont = simulate_model("dgx-h100", "llama2-7b", 1, trace, "prefill-first", instances=1, stack="vllm")[0]
    stat = simulate_model("dgx-h100", "llama2-7b", 1, trace, "static", instances=1, stack="vllm")[0]
    chunk = simulate_model("dgx-h100", "llama2-7b", 1, trace, "chunked", instances=1, stack="vllm")[0]
    assert stat["saturated"] and not cont["saturated"]
    assert cont["ttft_ms_p99"] < stat["ttft_ms_p99"] / 10
    # a 1024-token prompt in chunks of at most 512 tokens (less the decode tokens) takes 3 fused steps, not one
    assert chunk["ttft_ms_p50"] > 1.3 * cont["ttft_ms_p50"]
    assert chunk["throughput_rps"] == pytest.approx(cont["throughput_rps"], rel=0.01)


def test_metrics_keys_and_goodput():
    trace = poisson_with_lengths(20.0, 2000, prompt=256, gen=128, seed=2)
    s, per = simulate_model("dgx-h100", "llama2-7b", 1, trace, ttft_slo_s=0.2, tpot_slo_s=0.02)
    for m in ("ttft", "tpot", "e2e"):
        for q in ("mean", "p50", "p90", "p99"):
            assert np.isfinite(s[f"{m}_ms_{q}"])
        assert s[f"{m}_ms_p50"] <= s[f"{m}_ms_p90"] <= s[f"{m}_ms_p99"]
    assert s["goodput_rps"] <= s["throughput_rps"] and 0 <= s["slo_attainment"] <= 1
    assert s["tokens_per_s_per_node"] == pytest.approx(s["throughput_rps"] * 128)
    assert s["tokens_per_s_per_user"] == pytest.approx(np.mean(127 / (per.finish_s - per.first_token_s)), rel=1e-9)
    tight = simulate_model("dgx-h100", "llama2-7b", 1, trace, ttft_slo_s=0.2, tpot_slo_s=0.001)[0]
    assert tight["goodput_rps"] == 0.0


def test_requests_longer_than_the_window_are_rejected():
    trace = pd.DataFrame({"arrival_s": [0.0, 1.0], "prompt": [4000, 100], "gen": [200, 10]})
    s, per = simulate_model("dgx-h100", "llama2-7b", 1, trace)
    assert s["rejected"] == 1 and per.finish_s.isna().tolist() == [True, False]


def test_max_rate_within():
    rows = pd.DataFrame({"offered_rps": [1, 2, 4, 8], "ttft_ms_p99": [10, 20, 600, 30], "fits": True})
    assert max_rate_within(rows, "ttft_ms_p99", 500) == 2
    assert np.isnan(max_rate_within(rows, "ttft_ms_p99", 5))


def test_azure_trace_reader(tmp_path):
    t = read_request_trace(AZURE_CONV)
    assert t.arrival_s.iloc[0] == 0 and t.arrival_s.is_monotonic_increasing and (t.prompt >= 1).all()
    r = retime(t, 50.0)
    assert (len(r) - 1) / r.arrival_s.iloc[-1] == pytest.approx(50.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47,x,3\n")
    with pytest.raises(ConfigError, match="row 1: ContextTokens"):
        read_request_trace(str(bad))
    bad.write_text("when,tokens\n1,2\n")
    with pytest.raises(ConfigError, match="columns"):
        read_request_trace(str(bad))
    with pytest.raises(ConfigError, match="trace"):
        read_request_trace(str(tmp_path / "missing.csv"))


def test_cli_serve_model_json_keys_and_errors(capsys):
    assert main(["serve", "--platform", "dgx-h100", "--model", "llama2-7b", "--rate", "4", "--requests", "300",
                 "--prompt", "512", "--gen", "64", "--stack", "vllm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for m in ("ttft", "tpot", "e2e"):
        for q in ("mean", "p50", "p90", "p99"):
            assert out[f"{m}_ms_{q}"] > 0
    assert out["stack"] == "vllm" and out["instances"] == 8 and out["goodput_rps"] > 0
    assert main(["serve", "--platform", "dgx-h100", "--model", "llama2-7b", "--tp", "3"]) == 2
    assert "tp" in capsys.readouterr().err
    assert main(["serve", "--platform", "dgx-h100", "--model", "llama2-7b", "--trace", "no/such.csv"]) == 2
    assert "trace" in capsys.readouterr().err


def test_step_cost_lookup_compiled_and_python_agree_with_linear_interpolation():
    """The engine's table lookup (numba) and its Python twin: numpy's linear interpolation between grid
    points, and the last segment's slope beyond the last point."""
    rng = np.random.default_rng(3)
    table = np.cumsum(rng.random((3, 9)), axis=1)
    ctx_step = 16.0
    grid = 1 + ctx_step * np.arange(9)
    for c in rng.uniform(1, grid[-1], 50):
        want = np.interp(c, grid, table[2])
        assert _lookup(table, 2, c, ctx_step) == pytest.approx(want, rel=1e-12)
        assert _lookup.py_func(table, 2, c, ctx_step) == pytest.approx(want, rel=1e-12)
    beyond = grid[-1] + 40.0
    slope = (table[1, -1] - table[1, -2]) / ctx_step
    assert _lookup(table, 1, beyond, ctx_step) == pytest.approx(table[1, -1] + 40.0 * slope, rel=1e-12)
    assert _lookup.py_func(table, 1, beyond, ctx_step) == _lookup(table, 1, beyond, ctx_step)


def test_inflight_runs_whole_prompts_beside_decodes_within_the_token_budget():
    """TensorRT-LLM's in-flight batching (no chunked context): whole prompts join the step of the running
    decodes while decode plus prompt tokens fit the budget; a prompt is never split."""
    costs = step_costs("h100-sxm", "llama2-7b", 1)
    zeros = np.zeros(3)
    # two 4095-token prompts fill the first step (8190 of 8192); the third joins the next, beside 2 decodes
    first, finish, _ = run_instance(zeros, np.full(3, 4095), np.full(3, 8), "inflight", costs, 256, 8192)
    assert first[0] == first[1] < first[2]
    step1 = first[0]  # the end of the first step: two whole prompts
    pre = _lookup(costs.prefill, 1, 4095.0, costs.ctx_step)
    assert first[2] == pytest.approx(step1 + _mixed(pre, 4095, costs.decode, 2, 4096.0, costs.ctx_step), rel=1e-12)
    # a prompt as long as the budget runs only when nothing decodes: the decode token counts toward it
    first, finish, _ = run_instance(np.zeros(2), np.full(2, 4096), np.full(2, 8), "inflight", costs, 256, 4096)
    assert first[1] > finish[0]
    # a 4095-token prompt fits beside one decode token in 4096
    first, finish, _ = run_instance(np.zeros(2), np.full(2, 4095), np.full(2, 8), "inflight", costs, 256, 4096)
    assert first[0] < first[1] < finish[0]
    # one longer than the whole budget runs as the only prompt of a step, beside the decodes
    first, finish, _ = run_instance(np.zeros(2), np.full(2, 3000), np.full(2, 8), "inflight", costs, 256, 2048)
    assert first[0] < first[1] < finish[0]


def test_a_mixed_step_is_one_fused_pass():
    """A step of prompt tokens and decodes reads the weights once: dearer than either part alone, cheaper than
    the two as passes of their own; without decodes it is the prompt pass, without prompt tokens the decode step."""
    costs = step_costs("h100-sxm", "llama2-7b", 1)
    for tokens, b, ctx in ((128, 8, 600.0), (2048, 64, 1500.0), (4000, 200, 3000.0), (300, 256, 2000.0)):
        pre = _lookup(costs.prefill, 1, float(tokens), costs.ctx_step)
        dec = _lookup(costs.decode, b, ctx, costs.ctx_step)
        both = _mixed(pre, tokens, costs.decode, b, ctx, costs.ctx_step)
        assert max(pre, dec) <= both < pre + dec
        assert _mixed.py_func(pre, tokens, costs.decode, b, ctx, costs.ctx_step) == pytest.approx(both, rel=1e-12)
    assert _mixed(0.01, 100, costs.decode, 0, 1.0, costs.ctx_step) == 0.01
    assert _mixed(0.0, 0, costs.decode, 4, 900.0, costs.ctx_step) == _lookup(costs.decode, 4, 900.0, costs.ctx_step)


def test_the_stack_sets_the_scheduler_and_flags_override_it(capsys):
    """trtllm's scheduler block (in-flight batching, 2048 sequences, 8192 tokens a step) is the default under
    that stack; vllm has none and keeps serving_engine.yaml's; --batching and --token-budget override both."""
    base = ["serve", "--platform", "dgx-h100", "--model", "llama2-7b", "--tp", "1", "--instances", "1",
            "--rate", "2", "--requests", "50", "--json"]
    runs = {}
    for name, extra in (("trtllm", []), ("vllm", ["--stack", "vllm"]),
                        ("flags", ["--batching", "chunked", "--token-budget", "1024"])):
        assert main(base + extra) == 0
        out = json.loads(capsys.readouterr().out)
        runs[name] = (out["stack"], out["batching"], out["max_num_seqs"], out["token_budget"])
    assert runs == {"trtllm": ("trtllm", "inflight", 2048, 8192), "vllm": ("vllm", "prefill-first", 256, 4096),
                    "flags": ("trtllm", "chunked", 2048, 1024)}


def test_serving_defaults_to_a_serving_engine_on_every_gpu(capsys):
    """`rdusim serve --model` on a one-GPU platform, whose `predict` default is the article's NeMo 2023 stack,
    runs the platform's serving stack (trtllm, with its scheduler); an SN40L its default stack."""
    assert load_platform("h100-sxm").default_stack == "nemo-2023"
    assert load_platform("h100-sxm").serving_stack == load_platform("dgx-h200").serving_stack == "trtllm"
    assert load_platform("sn40l-node").serving_stack == load_platform("sn40l-node").default_stack
    for platform in ("h100-sxm", "h200-sxm", "a100-sxm"):
        assert main(["serve", "--platform", platform, "--model", "llama3.1-8b", "--requests", "20", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["stack"], out["batching"]) == ("trtllm", "inflight")
