"""Closed-loop arrivals, FP8 serving and the online-serving validation (issue 22's first "done when" item):
the closed loop's mechanics (numba against the pure-Python twin, never more than N in flight, one client
serialises its requests), FP8 step costs and KV capacity, the CLI's guards, and the replayed NIM points."""
import json

import numpy as np
import pandas as pd
import pytest

from rdusim.cli import main
from rdusim.core.errors import ConfigError
from rdusim.report import online_serving
from rdusim.report.online_serving import below_saturation, load_points, online_serving_summary, online_serving_table
from rdusim.scenarios.closed_form import arch_of, pass_cost, place
from rdusim.scenarios.engine import kv_capacity_tokens, step_costs
from rdusim.scenarios.serve_model import random_phase_closed_loop, simulate_model
from rdusim.scenarios.traces import closed_loop_requests

TTFT_TARGET, TPOT_TARGET = 0.25, 0.15  # issue 22's bar below saturation (median |error|)


@pytest.mark.parametrize("batching", ["prefill-first", "chunked"])
def test_closed_loop_numba_matches_python_twin(batching):
    trace = closed_loop_requests(120, 700, 60)
    fast = simulate_model("dgx-h100", "llama3.1-8b", 1, trace, batching, instances=2, concurrency=7)[1]
    slow = simulate_model("dgx-h100", "llama3.1-8b", 1, trace, batching, instances=2, concurrency=7, use_jit=False)[1]
    pd.testing.assert_frame_equal(fast, slow)


def test_closed_loop_keeps_n_in_flight_and_one_client_serialises():
    s, per = simulate_model("h100-sxm", "llama3.1-8b", 1, closed_loop_requests(60, 300, 40), "chunked",
                            concurrency=5)
    assert s["served"] == 60 and s["arrivals"] == "closed loop of 5"
    events = np.sort(np.concatenate([per.arrival_s.to_numpy(), per.finish_s.to_numpy()]))
    in_flight = [int(((per.arrival_s <= t) & (per.finish_s > t)).sum()) for t in events]
    assert max(in_flight) == 5
    assert np.all(per.arrival_s.iloc[:5] == 0.0) and np.all(per.arrival_s.iloc[5:] > 0)
    # one client: each request arrives the moment the last one finished, and its TTFT is one prompt pass
    s1, one = simulate_model("h100-sxm", "llama3.1-8b", 1, closed_loop_requests(4, 300, 40), "chunked", concurrency=1)
    assert one.arrival_s.iloc[1:].to_numpy() == pytest.approx(one.finish_s.iloc[:-1].to_numpy(), rel=1e-12)
    costs = step_costs("h100-sxm", "llama3.1-8b", 1, stack="trtllm")  # the platform's serving stack
    x = (300 - 1) / costs.ctx_step
    j = int(x)
    prompt_pass = costs.prefill[1, j] * (j + 1 - x) + costs.prefill[1, j + 1] * (x - j)
    assert s1["ttft_ms_mean"] == pytest.approx(prompt_pass * 1e3, rel=1e-9)


def test_concurrency_is_checked():
    trace = closed_loop_requests(10, 100, 10)
    with pytest.raises(ConfigError, match="concurrency"):
        simulate_model("dgx-h100", "llama3.1-8b", 1, trace, concurrency=0)
    with pytest.raises(ConfigError, match="concurrency"):
        simulate_model("dgx-h100", "llama3.1-8b", 1, trace, instances=4, concurrency=3)  # one client per instance


def test_fp8_step_costs_are_predicts_closed_form_and_kv_cache_doubles():
    costs = step_costs("dgx-h100", "llama3.1-70b", 2, max_num_seqs=4, stack="trtllm", precision="fp8",
                       kv_precision="fp8")
    placement = place("dgx-h100", arch_of("llama3.1-70b"), 2, "fp8", "fp8", 1, 1)
    ref = pass_cost("dgx-h100", "llama3.1-70b", 2, "fused", "fp8", "fp8", 1, 3, 1, placement).time_s
    assert costs.decode[3, 0] > ref  # the stack's runtime work comes on top of the kernels
    bf16_kv = kv_capacity_tokens("dgx-h100", "llama3.1-70b", 2, 0.9, "fp8", "bf16")
    fp8_kv = kv_capacity_tokens("dgx-h100", "llama3.1-70b", 2, 0.9, "fp8", "fp8")
    assert fp8_kv[1] == bf16_kv[1] and fp8_kv[0] == pytest.approx(2 * bf16_kv[0], abs=2)
    # FP8 weights: half the bytes of BF16 but the embedding (BF16 in both)
    bf16 = kv_capacity_tokens("dgx-h100", "llama3.1-70b", 2, 0.9)
    assert 0.5 * bf16[1] < fp8_kv[1] < 0.56 * bf16[1]


def test_formats_other_than_bf16_are_gpu_only_and_named():
    with pytest.raises(ConfigError, match="precision"):
        step_costs("sn40l-node", "llama2-7b", 8, precision="fp8")
    with pytest.raises(ConfigError):
        step_costs("h100-sxm", "llama2-7b", 1, precision="fp9")


@pytest.mark.parametrize("argv,field", [
    (["--concurrency", "4", "--rate", "3"], "concurrency"),
    (["--concurrency", "0"], "concurrency"),
    (["--concurrency", "2.5"], "concurrency"),
    (["--concurrency", "4", "--trace", "examples/azure_conv_2023_slice.csv"], "concurrency"),
    (["--token-budget", "0"], "token-budget"),
    (["--precision", "fp9"], "precision"),
])
def test_cli_concurrency_guards(argv, field, capsys):
    code = main(["serve", "--platform", "h100-sxm", "--model", "llama3.1-8b", "--requests", "20", *argv])
    err = capsys.readouterr().err
    assert code == 2 and field in err and len(err.strip().splitlines()) == 1


def test_cli_flags_of_one_model_refused_for_a_coe(capsys):
    assert main(["serve", "--platform", "sn40l-node", "--experts", "10", "--concurrency", "4"]) == 2
    assert "concurrency" in capsys.readouterr().err


def test_cli_closed_loop_fp8_json(capsys):
    assert main(["serve", "--platform", "h100-sxm", "--model", "llama3.1-8b", "--precision", "fp8", "--kv-precision",
                 "fp8", "--stack", "trtllm", "--concurrency", "4", "--prompt", "200", "--gen", "20", "--requests", "40",
                 "--batching", "chunked", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"arrivals": "closed loop of 4"' in out and '"precision": "fp8"' in out


# ----------------------------------------------------------------------------- the published points
@pytest.fixture(scope="module")
def table():
    return online_serving_table()


def test_points_and_saturation_flags(table):
    assert len(table) == 9 and set(table.basis) == {"predicted"}
    assert table.below_saturation.tolist() == [True, True, True, True, False, False, False, False, True]
    assert table.fits.all()


def test_replayed_errors(table):
    # the values the replay gives (predicted, never fitted): within 2% of these, relative
    by_conc = table[table.prompt == 5000].set_index("concurrency")
    # one client: TTFT is one 5,000-token prompt pass, FP8 GEMMs at the fitted fp8_gemm_efficiency_vs_bf16 (0.6058,
    # TensorRT-LLM v0.5's H100 FP8 times): 470 ms against NIM's 407 (+16%; 295 ms, -27%, with the datasheet's 2x)
    assert by_conc.ttft_ms_predicted[1] == pytest.approx(470.2, rel=0.02)
    assert table.ttft_error.iloc[0] == pytest.approx(0.156, abs=0.02)
    assert by_conc.tpot_ms_predicted[1] == pytest.approx(20.16, rel=0.02)
    assert by_conc.tpot_ms_predicted[50] == pytest.approx(73.9, rel=0.02)
    # once the closed loop has settled its clients are staggered: a request waits for the step in flight only,
    # so TTFT stays about one fused mixed step (a 5,000-token context beside the decodes) from 5 to 50 clients
    steady = by_conc.ttft_ms_predicted[[5, 25, 50]].to_numpy()
    assert steady == pytest.approx(np.full(3, 477.0), rel=0.02)
    summary = online_serving_summary(table).set_index(["metric", "split"])
    below = summary.xs("below saturation", level="split")
    # TPOT's median stays within the bar, but the mixed steps' slower prompt chunks take its largest error to 26%
    assert below.loc["tpot", "median_abs_error"] <= TPOT_TARGET and below.loc["tpot", "met"]
    assert below.loc["tpot", "max_abs_error"] == pytest.approx(0.238, abs=0.02)
    assert below.loc["ttft", "median_abs_error"] > TTFT_TARGET and not below.loc["ttft", "met"]  # missed: said so
    assert below.loc["ttft", "points_within_target"] == 2 and below.loc["tpot", "points_within_target"] == 3
    # with the clients' phases random (Poisson at the rate that keeps N in flight) prompts queue for one another's:
    # TTFT at 5 and 25 clients within 10% of NIM's; at 50 the model's capacity (FP8 GEMMs of 2023) runs short
    rand = by_conc.ttft_ms_random_phase
    assert rand[1] == by_conc.ttft_ms_predicted[1] and rand[5] > 1.05 * by_conc.ttft_ms_predicted[5]
    assert abs(by_conc.ttft_error_random_phase[5]) < 0.1 and abs(by_conc.ttft_error_random_phase[25]) < 0.1
    assert by_conc.ttft_error_random_phase[50] > 0.3
    assert table[~table.below_saturation].ttft_ms_random_phase.isna().all()
    assert below.loc["ttft, random phases", "median_abs_error"] == pytest.approx(0.156, abs=0.02)
    assert below.loc["tpot, random phases", "median_abs_error"] == pytest.approx(0.141, abs=0.02)


def test_below_saturation_rule():
    pts = pd.DataFrame({"source": "s", "model": "m", "platform": "p", "tp": 1, "precision": "fp8", "prompt": 10,
                        "gen": 10, "concurrency": [1, 2, 4, 8], "throughput_tokens_per_s": [10.0, 19.0, 20.0, 20.5]})
    assert below_saturation(pts, 0.05).tolist() == [True, True, False, False]


def test_points_file_goes_through_the_loader(tmp_path, monkeypatch):
    bad = tmp_path / "points.csv"
    text = online_serving.POINTS_FILE.read_text().splitlines()
    bad.write_text("\n".join([text[0], text[1].replace(",406.77,", ",１,")]) + "\n")
    monkeypatch.setattr(online_serving, "POINTS_FILE", bad)
    with pytest.raises(ConfigError, match="ttft_ms_mean"):
        load_points()


def test_random_phase_closed_loop_keeps_the_clients_in_flight_and_queues_prompts():
    """Little's law at the bisected rate. Under vLLM's prefill-first steps (stack vllm on one H100) the locked
    loop keeps its 8 clients in the train they started in, every prompt waiting for the ones before; with
    random phases they mostly miss each other (the NIM replay shows the other lock: staggered, no waits)."""
    n, conc = 400, 8
    locked, lper = simulate_model("h100-sxm", "llama3.1-8b", 1, closed_loop_requests(n, 3000, 100), concurrency=conc,
                                  stack="vllm")
    lsteady = lper.iloc[n // 4:]
    locked_ttft = (lsteady.first_token_s - lsteady.arrival_s).mean()
    summary, per, at = random_phase_closed_loop("h100-sxm", "llama3.1-8b", 1, conc, 3000, 100, n, n // 4,
                                                locked["throughput_rps"], stack="vllm")
    steady = per.iloc[n // 4:]
    assert at["in_flight"] == pytest.approx(conc, rel=0.02)
    assert at["in_flight"] == pytest.approx(at["rate_rps"] * (steady.finish_s - steady.arrival_s).mean(), rel=1e-9)
    assert at["rate_rps"] < locked["throughput_rps"]
    ttft = (steady.first_token_s - steady.arrival_s).mean()
    assert locked_ttft > 3 * ttft


def test_cli_client_phases(capsys):
    base = ["serve", "--platform", "h100-sxm", "--model", "llama3.1-8b", "--prompt", "3000", "--gen", "100",
            "--requests", "300", "--json"]
    assert main(base + ["--concurrency", "8", "--client-phases", "random"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arrivals"].startswith("closed loop of 8, random phases") and out["rate_rps"] > 0
    assert main(base + ["--client-phases", "random"]) == 2
    assert "client-phases" in capsys.readouterr().err
