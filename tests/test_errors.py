"""One regression test per defect of issue 12 ("Every bad input gets a clear error"), in the issue's order."""
from __future__ import annotations

import copy
import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cli_run import cli
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import load_platform
from rdusim.report.configcheck import check_config
from rdusim.report.serve_tables import serving_load
from rdusim.scenarios import serve as serve_mod
from rdusim.scenarios.predict import predict, predict_one
from rdusim.scenarios.serve import poisson_requests, simulate
from rdusim.scenarios.sweep import run_shard

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def bad_input(*argv: str, names: str) -> str:
    """Exit 2 with one line that names ``names``."""
    rc, out, err = cli(*argv)
    assert rc == 2, (rc, out, err)
    assert err.startswith("rdusim: error: ") and err.count("\n") == 1 and "allowed:" in err, err
    assert names in err, err
    return err


def result(*argv: str) -> dict:
    rc, out, err = cli(*argv, "--json")
    assert rc == 0, err
    return json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))


def trace_file(tmp_path, text: str | bytes, name="log.csv") -> str:
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return str(path)


# 1. empty expert cell: NaN cast to int64, numba read out of bounds (exit 139, or NaN p50)
def test_1_trace_with_empty_expert_cell(tmp_path):
    path = trace_file(tmp_path, "arrival_s,expert\n0.1,\n0.2,1\n")
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--trace", path, names="row 0: expert")


# 2. NaN rate / NaN arrival: an infinite loop that SIGINT could not stop; .nan in the pipeline config
def test_2_nan_rate_and_nan_arrival_are_errors(tmp_path):
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--rate", "nan", names="rate")
    path = trace_file(tmp_path, "arrival_s,expert\n0.1,0\nnan,1\n")
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--trace", path, names="row 1: arrival_s")
    with pytest.raises(ConfigError, match="finite"):
        simulate("dgx-h100", 2, pd.DataFrame({"arrival_s": [0.0, np.nan], "expert": [0, 1]}))


def test_2_nan_in_pipeline_config_is_refused():
    cfg = copy.deepcopy(CONFIG)
    cfg["serving"]["rates"] = yaml.safe_load("[.nan]")
    with pytest.raises(ConfigError, match=r"serving\.rates\.0: got nan; allowed: a finite number"):
        check_config(cfg, SCHEMA)


def test_2_the_serving_loop_returns_to_python_between_chunks(monkeypatch):
    """Ctrl-C is raised in Python between chunks of the numba loop: with small chunks, a run of
    20,000 requests takes many calls, and a SIGINT during it raises KeyboardInterrupt."""
    trace = poisson_requests(50.0, 20000, 20, 1.0, seed=3)
    simulate("dgx-h100", 20, trace)  # compile / load the kernel first
    calls = []
    real_step = serve_mod._step

    def counting_step(*args):
        calls.append(1)
        return real_step(*args)

    monkeypatch.setattr(serve_mod, "_step", counting_step)
    monkeypatch.setattr(serve_mod, "CHUNK_EVENTS", 500)
    monkeypatch.setattr(serve_mod._run, "__defaults__", (True, 500))
    whole = simulate("dgx-h100", 20, trace)[1]
    total = len(calls)
    assert total > 40
    monkeypatch.setattr(serve_mod, "_step", real_step)
    pd.testing.assert_frame_equal(whole, simulate("dgx-h100", 20, trace)[1])  # chunking changes nothing

    def interrupt_once_running(*args):
        if len(calls) == 25:
            signal.raise_signal(signal.SIGINT)
        calls.append(1)
        return real_step(*args)

    calls.clear()
    monkeypatch.setattr(serve_mod, "_step", interrupt_once_running)
    with pytest.raises(KeyboardInterrupt):
        simulate("dgx-h100", 20, trace)
    assert 25 <= len(calls) <= 26 < total  # stopped at the chunk boundary, long before the end


def test_2_cli_exit_status_on_ctrl_c(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(serve_mod, "simulate", interrupted)
    monkeypatch.setattr(serve_mod, "simulate_poisson", interrupted)  # the CLI streams a Poisson run
    rc, out, err = cli("serve", "--platform", "dgx-h100", "--experts", "10", "--requests", "100")
    assert rc == 130 and err == "rdusim: interrupted\n"


# 3. int64 overflow reported as fitting
def test_3_int64_sizes_are_refused_with_the_bound():
    bad_input("predict", "--platform", "dgx-h100", "--model", "llama2-7b", "--batch", "9223372036854775808",
              names="batch: got '9223372036854775808'; allowed: a whole number from 1 to 1,073,741,824")
    bad_input("predict", "--platform", "dgx-h100", "--model", "llama2-7b", "--prompt", "9223372036854775808",
              names="prompt")
    with pytest.raises(ConfigError, match="row 0: batch"):
        predict(pd.DataFrame({"platform": ["dgx-h100"], "model": ["llama2-7b"], "batch": [1e19]}))
    with pytest.raises(ConfigError, match="int64"):  # batch x tokens x KV bytes per token past int64
        predict_one("dgx-h100", "bloom-176b", 2**30, 8, 2000, 48)


def test_3_large_batch_within_int64_is_fits_false_not_negative():
    out = predict_one("dgx-h100", "llama2-7b", 2**29, 1, 128, 128)
    assert out["fits"] is False and "needs" in out["reason"] and out["total_ms"] is None


def test_3_requests_past_the_memory_limit_are_refused(tmp_path):
    # a per-request table is bounded by memory; a streamed run (issue 22) only by time
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--requests", "1000000000", "--requests-csv",
              str(tmp_path / "r.csv"), names="requests: got '1000000000'; allowed: a whole number from 1 to 20,000,000")
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--requests", "100000000000", "--rate", "1",
              names="rate: got 1")


# 4. non-finite results with exit 0
def test_4_coe_batch_bound_and_router_that_does_not_fit():
    bad_input("coe", "--platform", "dgx-h100", "--experts", "10", "--batch", "1000000", names="batch")
    out = result("coe", "--platform", "a100-sxm", "--experts", "1", "--batch", "1024")
    assert out["fits"] is False and "router" in out["reason"] and out["router_ms"] is None


def test_4_tiny_rate_and_infinite_arrival_are_errors(tmp_path):
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--rate", "1e-300", names="rate: got 1e-300")
    path = trace_file(tmp_path, "arrival_s,expert\n0.1,0\ninf,1\n")
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--trace", path, names="row 1: arrival_s")


def test_4_sn40l_prompt_past_the_context_window_is_an_error():
    bad_input("predict", "--platform", "sn40l-node", "--model", "llama2-7b", "--prompt", "65536", "--gen", "16",
              names="context window of llama2-7b")
    bad_input("predict", "--platform", "sn40l", "--model", "llama2-7b", "--prompt", "1000000", names="prompt + gen")


@pytest.mark.parametrize("platform, model, batch, tp, prompt, gen", [
    ("sn40l", "llama2-7b", 64, 1, 4000, 64),
    ("sn40l-node", "mistral-7b", 1, 1, 32000, 16),
])
def test_sn40l_rows_that_fit_have_a_time(platform, model, batch, tp, prompt, gen):
    out = predict_one(platform, model, batch, tp, prompt, gen)
    assert not out["fits"] or all(out[k] is not None and np.isfinite(out[k])
                                  for k in ("ttft_ms", "decode_ms_per_token", "total_ms")), out


def test_4_json_output_never_holds_nan():
    out = result("predict", "--platform", "a100-sxm", "--model", "llama2-70b")
    assert out["fits"] is False and out["total_ms"] is None


# 5. platform files
def _platform(tmp_path, base: str, name: str = "p", edit=None) -> str:
    doc = yaml.safe_load((ROOT / f"rdusim/data/platforms/{base}.yaml").read_text())
    if edit:
        edit(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("base, block, key, value", [
    ("h100-sxm", "published", "hbm_bandwidth_GBps", 0),
    ("h100-sxm", "published", "peak_bf16_TFLOPs", 0),
    ("sn40l", "assumed", "clock_GHz", 0),
    ("sn40l", "published", "pcus_count", 0.5),
    ("sn40l", "published", "ddr_bandwidth_GBps", -200),
    ("h100-sxm", "measured", "gemm_bf16_TFLOPs", float("nan")),
])
def test_5_zero_negative_and_fractional_platform_values(tmp_path, base, block, key, value):
    path = _platform(tmp_path, base, edit=lambda d: d["device"][block].__setitem__(key, value))
    err = bad_input("predict", "--platform", path, "--model", "llama2-7b", names=f"p.device.{block}.{key}")
    assert "a100-sxm" not in err  # predict names the field, not the list of built-in platforms


def test_5_device_file_loops_are_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("kind: gpu\ndevices: 8\ndevice_file: b.yaml\n")
    (tmp_path / "b.yaml").write_text("kind: gpu\ndevices: 8\ndevice_file: a.yaml\n")
    (tmp_path / "me.yaml").write_text("kind: gpu\ndevices: 8\ndevice_file: me.yaml\n")
    with pytest.raises(ConfigError, match=r"me\.device_file.*loop: me -> me"):
        load_platform(str(tmp_path / "me.yaml"))
    bad_input("coe", "--platform", str(tmp_path / "a.yaml"), "--experts", "2", names="loop: a -> b -> a")


def test_5_misspelt_key_suggests_the_nearest(tmp_path):
    def misspell(d):
        d["device"]["published"]["hbm_bandwith_GBps"] = d["device"]["published"].pop("hbm_bandwidth_GBps")
    path = _platform(tmp_path, "h100-sxm", edit=misspell)
    err = bad_input("predict", "--platform", path, "--model", "llama2-7b", names="hbm_bandwith_GBps")
    assert "did you mean 'hbm_bandwidth_GBps'?" in err
    wrong_unit = _platform(tmp_path, "h100-sxm", "u", lambda d: d["device"]["published"].__setitem__(
        "host_link_GB", d["device"]["published"].pop("host_link_GBps")))
    bad_input("coe", "--platform", wrong_unit, "--experts", "2", names="host_link in bytes/s")


# 6. serve tracebacks on bad trace files and --zipf nan
@pytest.mark.parametrize("content, names", [
    (None, "trace: got"),                               # missing
    ("", "a CSV file with a header"),                   # empty
    ("arrival_s,expert\n", "rows: got 0"),              # header only
    ("arrival_s,expert\nabc,1\n", "row 0: arrival_s"),  # non-numeric
    ("arrival_s,expert\n0.5,x\n", "row 0: expert"),
    ("time,expert\n0.5,1\n", "column arrival_s"),
    (b"\xff\xfe\x00\x01", "trace: got"),                # not text
])
def test_6_bad_trace_files(tmp_path, content, names):
    path = str(tmp_path / "missing.csv") if content is None else trace_file(tmp_path, content)
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--trace", path, names=names)


def test_6_zipf_nan():
    bad_input("serve", "--platform", "dgx-h100", "--experts", "10", "--zipf", "nan", names="zipf: got 'nan'")


# 7. inputs past the model's limits
def test_7_prompt_past_the_context_window():
    bad_input("predict", "--platform", "dgx-h100", "--model", "llama2-7b", "--prompt", "100000",
              names="prompt + gen: got 100128; allowed: at most 4,096 tokens (the context window of llama2-7b)")


def test_7_serving_gen_past_the_context_window():
    for gen, match in ((1e8, "serving.gen"), (4000, "context window")):
        cfg = copy.deepcopy(CONFIG)
        cfg["serving"]["gen"] = gen
        with pytest.raises(ConfigError, match=match):
            check_config(cfg, SCHEMA)


# 8. serving tables and sweeps follow config.coe
def test_8_serving_tables_follow_config_coe():
    cfg = copy.deepcopy(CONFIG)
    cfg["serving"].update(platforms=["dgx-h100"], experts=[100], skews=[0.0], rates=[2], requests=300)
    base = serving_load(cfg)
    cfg["coe"]["hbm_reserve_fraction"] = 0.9
    reserved = serving_load(cfg)
    assert reserved["slots"].iloc[0] < base["slots"].iloc[0]
    assert reserved["hbm_hit_rate"].iloc[0] < base["hbm_hit_rate"].iloc[0]


def test_8_sweeps_follow_config_coe():
    spec = dict(CONFIG["sweeps"]["default"], hbm_capacity_GB=[64], hbm_bandwidth_GBps=[2000], ddr_capacity_TB=[1.5],
                ddr_to_hbm_GBps=[125], host_link_GBps=[64], experts=[20], batch=[1], gen=[20], zipf=[0.0], shards=1)
    base = run_shard(spec, 0, 1, progress=False, coe=CONFIG["coe"])
    reserved = run_shard(spec, 0, 1, progress=False, coe=dict(CONFIG["coe"], hbm_reserve_fraction=0.9))
    assert reserved["sn40l_ms"].iloc[0] > base["sn40l_ms"].iloc[0]  # 20 experts fit HBM; with 90% reserved they spill: copies


# 9. plain `snakemake --cores 8` resumes after Ctrl-C: a workflow profile that Snakemake reads by itself
def test_9_default_workflow_profile_reruns_incomplete_jobs():
    profile = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    assert profile == {"rerun-incomplete": True}


def test_unknown_model_lists_the_mixture_of_experts_models_too():
    """An unknown model's error lists the dense zoo and the MoE zoo, and suggests the nearest name."""
    err = bad_input("predict", "--platform", "h100-sxm", "--model", "mixtrl-8x7b", names="model")
    assert "llama3.1-70b" in err and "mixture of experts: mixtral-8x7b" in err and "deepseek-v3" in err
    assert "did you mean 'mixtral-8x7b'" in err


def test_serving_a_mixture_of_experts_says_it_is_not_modelled_there():
    err = bad_input("serve", "--platform", "dgx-h100", "--model", "mixtral-8x7b", "--tp", "8", "--rate", "1",
                    "--requests", "10", names="model")
    assert "does not model mixtures of experts" in err and "rdusim predict" in err
