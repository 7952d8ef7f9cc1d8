"""Mixture-of-experts models, number formats and speculative decoding (issue 21)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from baselines.gpu import GpuConstants
from benchmarks.hf_config import moe_fields
from benchmarks.moe import (
    active_param_count,
    busy_devices,
    expected_distinct_experts,
    get_moe_model,
    inclusion_probabilities,
    is_moe,
    kv_bytes_per_token,
    load_moe_models,
    param_count,
    sample_distinct_experts,
    zipf_popularity,
)
from rdusim.core.errors import ConfigError
from rdusim.core.platforms import builtin_names, load_platform
from rdusim.core.precision import gemm_peak
from rdusim.report import speculative
from rdusim.report.speculative import fit_acceptance, load_checks, public_checks_table
from rdusim.scenarios.closed_form import _check_tp, arch_of, predict_closed_form
from rdusim.scenarios.extended import largest_batch
from rdusim.scenarios.predict import predict, predict_one
from rdusim.scenarios.speculative import speculative_defaults, step_time_per_token, tokens_per_verify

MOE = list(load_moe_models())


# ------------------------------------------------------------------------------- the zoo
@pytest.mark.parametrize("name", MOE)
def test_parameter_counts_match_published_totals_and_active(name):
    m = get_moe_model(name)
    assert param_count(m) == pytest.approx(m.reference_params, rel=0.01)
    assert active_param_count(m) == pytest.approx(m.reference_active_params, rel=0.01)


def test_required_names_and_deepseek_layout():
    assert {"mixtral-8x7b", "mixtral-8x22b", "deepseek-v3"} <= set(MOE)
    d = get_moe_model("deepseek-v3")
    assert (d.dense_layers, d.experts, d.top_k, d.shared_experts, d.attention) == (3, 256, 8, 1, "mla")


def test_mla_kv_bytes_are_the_latent_and_rope_key():
    d = get_moe_model("deepseek-v3")
    assert kv_bytes_per_token(d) == 61 * (512 + 64) * 2 == 70272
    # the same model with full multi-head K and V (128 heads x 128) would cache 57x more
    assert 2 * 61 * 128 * 128 * 2 / kv_bytes_per_token(d) == pytest.approx(56.9, abs=0.1)
    assert kv_bytes_per_token(get_moe_model("mixtral-8x7b")) == 2 * 32 * 8 * 128 * 2
    assert kv_bytes_per_token(d, 1.0) == 70272 / 2  # FP8 KV cache


# ------------------------------------------------------------------------------- experts touched
def test_expected_distinct_experts_limits_and_growth():
    e = expected_distinct_experts(256, 8, np.array([1, 8, 64, 512, 100000]))
    assert e[0] == pytest.approx(8.0)
    assert np.all(np.diff(e) > 0) and e[-1] == pytest.approx(256.0)
    assert expected_distinct_experts(8, 2, 2) == pytest.approx(8 * (1 - (6 / 8) ** 2))


@pytest.mark.parametrize("popularity", [None, "zipf"])
@pytest.mark.parametrize("experts,top_k,batch", [(256, 8, 16), (8, 2, 3), (128, 8, 64)])
def test_expected_distinct_experts_against_sampling(experts, top_k, batch, popularity):
    p = zipf_popularity(experts, 1.0) if popularity else None
    exact = expected_distinct_experts(experts, top_k, batch, p)
    sampled = sample_distinct_experts(experts, top_k, batch, p, samples=3000, seed=1)
    assert sampled == pytest.approx(exact, rel=0.01)


def test_inclusion_probabilities_sum_to_top_k_and_cap_at_one():
    q = inclusion_probabilities(8, 2, zipf_popularity(8, 2.0))
    assert q.sum() == pytest.approx(2.0) and q.max() <= 1.0 and q[0] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="popularity"):
        inclusion_probabilities(8, 2, [1.0, -1] + [1] * 6)


def test_busy_devices():
    assert busy_devices(8, 2, 8, 1) == pytest.approx(2.0)          # one token, two experts, two GPUs
    assert busy_devices(256, 8, 8, 10000) == pytest.approx(8.0)


# ------------------------------------------------------------------------------- every platform
@pytest.mark.parametrize("name", MOE)
def test_moe_predicts_or_says_why_on_every_platform(name):
    rows = []
    for platform in builtin_names():
        devices = load_platform(platform).devices
        rows.append({"platform": platform, "model": name, "tp": devices, "batch": 4})
    out = predict(pd.DataFrame(rows))
    for _, r in out.iterrows():
        if r["fits"]:
            assert math.isfinite(r["decode_ms_per_token"]) and r["decode_ms_per_token"] > 0, r["platform"]
            assert r["tokens_per_s_per_user"] == pytest.approx(1e3 / r["decode_ms_per_token"])
        else:
            assert "GB" in r["reason"], r["platform"]
    assert out["precision"].eq("bf16").all()


def test_expert_bytes_grow_with_batch_until_every_expert_is_read():
    hbm = [predict_closed_form("dgx-h200", "deepseek-v3", b, 8, 128, 128, "fused", "fp8")["decode_hbm_bytes"]
           for b in (1, 4, 16, 64, 256)]
    assert np.all(np.diff(hbm) > 0)
    # at batch 1, 8 of 256 experts: the expert part is a small share of all the experts' bytes
    assert hbm[0] < 0.25 * hbm[-1]


def test_sn40l_hot_experts_in_hbm_move_bytes_from_ddr():
    r = {h: predict_closed_form("sn40l-node", "deepseek-v3", 8, 8, 128, 128, "fused-ho", hot_experts_in_hbm=h)
         for h in (0, 40, 80)}
    assert r[0]["decode_ddr_bytes"] > r[40]["decode_ddr_bytes"] > r[80]["decode_ddr_bytes"]
    assert r[0]["decode_s"] > r[40]["decode_s"] > r[80]["decode_s"]
    too_many = predict_closed_form("sn40l-node", "deepseek-v3", 8, 8, 128, 128, "fused-ho", hot_experts_in_hbm=200)
    assert not too_many["fits"] and "hot_experts_in_hbm 200" in too_many["reason"]
    default = predict_closed_form("sn40l-node", "deepseek-v3", 8, 8, 128, 128, "fused-ho")
    assert 0 < default["hot_experts_in_hbm"] < 256  # as many as fit: BF16 DeepSeek-V3 does not fit 8 sockets' HBM


# ------------------------------------------------------------------------------- precision
def test_fp8_on_h100_halves_weight_bytes_and_doubles_the_gemm_ceiling():
    h100 = load_platform("h100-sxm")
    assert gemm_peak(h100, "fp8") / gemm_peak(h100, "bf16") == pytest.approx(2.0, rel=0.01)
    bf16 = predict_one("dgx-h100", "llama2-70b", tp=8)
    fp8 = predict_one("dgx-h100", "llama2-70b", tp=8, precision="fp8")
    assert fp8["weight_bytes"] / bf16["weight_bytes"] == pytest.approx(0.5, abs=0.01)
    assert (bf16["precision"], fp8["precision"]) == ("bf16", "fp8")
    assert 0.5 < fp8["decode_ms_per_token"] / bf16["decode_ms_per_token"] < 0.9
    # a compute-bound prompt pass (8 x 2048 tokens) runs at twice the GEMM ceiling times the fitted FP8
    # efficiency relative to BF16 (0.6058: 1 / (2 x 0.6058) = 0.83 of the BF16 time)
    long_bf16 = predict_one("h100-sxm", "llama2-7b", batch=8, prompt=2048, gen=16, precision="bf16", kv_precision="bf16")
    long_fp8 = predict_one("h100-sxm", "llama2-7b", batch=8, prompt=2048, gen=16, precision="fp8")
    factor = GpuConstants.load().fp8_gemm_efficiency_vs_bf16
    assert long_fp8["ttft_ms"] / long_bf16["ttft_ms"] == pytest.approx(1 / (2 * factor), abs=0.03)


def test_int4_weight_only_streams_a_quarter_at_the_bf16_rate():
    h100 = load_platform("h100-sxm")
    assert gemm_peak(h100, "int4") == gemm_peak(h100, "bf16")
    r = predict_one("h100-sxm", "llama2-7b", precision="int4")
    assert r["weight_bytes"] / predict_one("h100-sxm", "llama2-7b")["weight_bytes"] == pytest.approx(0.27, abs=0.02)


@pytest.mark.parametrize("platform,model,tp", [("dgx-h100", "llama2-70b", 8), ("sn40l-node", "llama2-70b", 8),
                                               ("h100-sxm", "llama2-7b", 1)])
def test_closed_form_agrees_with_the_graph_path_on_dense_bf16(platform, model, tp):
    graph = predict_one(platform, model, tp=tp)
    closed = predict_closed_form(platform, model, 1, tp, 128, 128, graph["execution"])
    assert closed["decode_s"] * 1e3 == pytest.approx(graph["decode_ms_per_token"], rel=0.05)
    assert closed["ttft_s"] * 1e3 == pytest.approx(graph["ttft_ms"], rel=0.15)


def test_every_row_names_its_precision():
    out = predict(pd.DataFrame({"platform": ["h100-sxm", "dgx-h100"], "model": ["llama2-7b", "mixtral-8x7b"],
                                "tp": [1, 8]}))
    assert list(out["precision"]) == ["bf16", "bf16"] and list(out["kv_precision"]) == ["bf16", "bf16"]
    dense = predict(pd.DataFrame({"platform": ["h100-sxm"], "model": ["llama2-7b"]}))
    assert dense.loc[0, "precision"] == "bf16"
    assert dense.loc[0, "tokens_per_s_per_user"] == pytest.approx(1e3 / dense.loc[0, "decode_ms_per_token"])


# ------------------------------------------------------------------------------- speculative decoding
def test_tokens_per_verify_formula():
    assert tokens_per_verify(4, 0.8) == pytest.approx((1 - 0.8**5) / 0.2) == pytest.approx(3.3616)
    assert tokens_per_verify(4, 1.0) == 5.0
    assert tokens_per_verify(4, 0.0) == 1.0
    assert step_time_per_token(1.0, 10.0, 4, 1.0) == pytest.approx(14.0 / 5.0)


def test_speculative_row_is_k_draft_steps_plus_one_verify_pass():
    base = dict(platform="sn40l-node", model="llama2-70b", tp=8)
    spec = predict_one(**base, draft="llama2-7b", draft_tokens=3, acceptance=0.7)
    draft = predict_one("sn40l-node", "llama2-7b", tp=8)
    verify = predict_one(**base, batch=4)
    tau = (1 - 0.7**4) / 0.3
    assert spec["tokens_per_verify"] == pytest.approx(tau)
    assert spec["decode_ms_per_token"] == pytest.approx((3 * draft["decode_ms_per_token"] + verify["decode_ms_per_token"]) / tau)
    plain = predict_one(**base)
    assert spec["tokens_per_s_per_user"] > plain["tokens_per_s_per_user"]
    assert (spec["draft"], spec["draft_tokens"], spec["acceptance"]) == ("llama2-7b", 3, 0.7)


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,message", [
    (dict(precision="fp9"), "precision: got 'fp9'; allowed: bf16, fp8, int8, int4"),
    (dict(kv_precision="int4"), "kv_precision: got 'int4'; allowed: bf16, fp8, int8"),
    (dict(platform="dgx-a100", precision="fp8"), "precision: got 'fp8'; allowed: one that dgx-a100 supports"),
    (dict(hot_experts_in_hbm=3), "hot_experts_in_hbm: got 3; allowed: only for a mixture-of-experts model"),
    (dict(model="deepseek-v3", hot_experts_in_hbm=3), "hot_experts_in_hbm: got 3; allowed: only on an SN40L platform"),
    (dict(platform="sn40l-node", model="deepseek-v3", hot_experts_in_hbm=300),
     "hot_experts_in_hbm: got 300; allowed: a whole number from 0 to 256"),
    (dict(platform="sn40l-node", model="deepseek-v3", hot_experts_in_hbm=-1), "hot_experts_in_hbm: got -1"),
    (dict(draft="nope"), "draft: got 'nope'; allowed: llama2-7b"),
    (dict(draft="llama2-70b"), "draft: got 'llama2-70b'; allowed: a smaller model than the target"),
    (dict(draft="llama2-7b", draft_tokens=0), "draft_tokens: got 0; allowed: a whole number from 1 to 64"),
    (dict(draft="llama2-7b", acceptance=1.5), "acceptance: got 1.5; allowed: a finite number >= 0 and <= 1"),
    (dict(model="mixtral-8x7b", execution="eager"), "execution: got 'eager'; allowed: for a mixture-of-experts"),
    (dict(model="mixtral-8x7b", tp=16, platform="dgx-h100"), "tp: got 16; allowed: 1 to 8"),
    (dict(model="qwen3-235b-a22b", tp=3, platform="dgx-h100"), "tp: got 3; allowed: a divisor of qwen3-235b-a22b.heads"),
    (dict(model="mixtral-8x7b", prompt=40000), "prompt + gen: got 40128; allowed: at most 32,768 tokens"),
])
def test_new_errors_name_the_field(kwargs, message):
    request = dict(platform="dgx-h100", model="llama2-70b", tp=8)
    request.update(kwargs)
    with pytest.raises(ConfigError) as err:
        predict_one(**request)
    assert str(err.value).startswith(message)


def test_frame_errors_name_the_row():
    frame = pd.DataFrame({"platform": ["h100-sxm", "h100-sxm"], "model": ["llama2-7b", "mixtral-8x7b"],
                          "precision": ["bf16", "fp4"]})
    with pytest.raises(ConfigError, match=r"^row 1: precision: got 'fp4'"):
        predict(frame)


# ------------------------------------------------------------------------------- config.json
CONFIGS = Path(__file__).parent / "data" / "hf_configs"


@pytest.mark.parametrize("file,zoo", [("mixtral-8x7b.json", "mixtral-8x7b"), ("deepseek-v3.json", "deepseek-v3"),
                                      ("qwen3-235b-a22b.json", "qwen3-235b-a22b")])
def test_moe_config_json_reads_as_the_zoo_entry(file, zoo):
    path = str(CONFIGS / file)
    assert is_moe(path)
    m, ref = get_moe_model(path), get_moe_model(zoo)
    assert param_count(m) == param_count(ref)
    assert active_param_count(m, True) == active_param_count(ref, True)
    assert kv_bytes_per_token(m) == kv_bytes_per_token(ref)
    r = predict_one("dgx-h200", path, tp=8, precision="fp8")
    assert r["decode_ms_per_token"] == pytest.approx(predict_one("dgx-h200", zoo, tp=8, precision="fp8")["decode_ms_per_token"])


def test_moe_config_json_errors_name_the_field(tmp_path):
    cfg = json.loads((CONFIGS / "deepseek-v3.json").read_text())
    cfg.pop("kv_lora_rank")
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"^model: got|bad.json.kv_lora_rank: got None"):
        predict_one("dgx-h200", str(tmp_path / "bad.json"), tp=8)


def test_busy_devices_with_more_devices_than_experts():
    assert busy_devices(8, 2, 16, 1) == pytest.approx(4.0)  # two experts, each split over two devices


# ------------------------------------------------------------------------------- public checks, max batch
def test_public_checks_one_fitted_acceptance_and_405b_within_15_percent():
    assert sum(r["role"] == "fit" for r in load_checks()) == 1
    a, rate = fit_acceptance()
    assert a == pytest.approx(speculative_defaults()["acceptance"], abs=1e-3)  # the packaged value is the fit
    assert rate == pytest.approx(457, rel=0.01)
    t = public_checks_table().set_index("id")
    assert t.loc["sn40l16_llama31_70b_spec", "basis"].startswith("calibrated")
    assert t.loc["sn40l16_llama31_405b_spec", "basis"] == "predicted"
    assert abs(t.loc["sn40l16_llama31_405b_spec", "error"]) < 0.15
    r1 = t.loc["sn40l16_deepseek_r1_bf16"]
    assert r1["fits"] and r1["predicted"] > 0 and np.isnan(r1["published"])
    fp8 = t[t.index.str.startswith("trtllm05_h100_fp8")]
    assert len(fp8) == 4 and (fp8.metric == "ttft_ms").all()
    assert fp8.basis.str.startswith("calibrated: fp8_gemm_efficiency_vs_bf16_fraction fitted to the 4 rows").all()


def test_batch_max_is_the_largest_batch_that_fits():
    assert largest_batch(lambda b: b <= 37) == 37
    assert largest_batch(lambda b: False) == 0
    best = predict_one("h100-sxm", "llama2-7b", batch="max", prompt=1024, gen=1024)
    assert best["fits"] and not predict_one("h100-sxm", "llama2-7b", batch=best["batch"] + 1, prompt=1024, gen=1024)["fits"]


def test_cli_precision_and_draft(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "rdusim.cli", "predict", *a], capture_output=True, text=True)  # noqa: E731
    bad = run("--platform", "dgx-a100", "--model", "llama2-70b", "--tp", "8", "--precision", "fp8")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "dgx-a100" in bad.stderr
    ok = run("--platform", "dgx-h100", "--model", "mixtral-8x7b", "--tp", "8", "--precision", "fp8", "--json")
    out = json.loads(ok.stdout)
    assert ok.returncode == 0 and out["precision"] == "fp8" and out["tokens_per_s_per_user"] > 0
    spec = run("--platform", "sn40l-node", "--model", "llama2-70b", "--tp", "8", "--draft", "llama2-7b",
               "--draft-tokens", "3", "--acceptance", "0.7", "--json")
    assert json.loads(spec.stdout)["tokens_per_verify"] == pytest.approx((1 - 0.7**4) / 0.3)


# ------------------------------------------------------------------------------- more error messages
ENTRY = {"source": "x", "reference_params": 1e9, "reference_active_params": 1e8, "active_counts_embedding": True,
         "layers": 4, "hidden": 64, "heads": 4, "kv_heads": 2, "vocab": 100, "ffn": 128, "dense_layers": 0,
         "experts": 8, "top_k": 2, "shared_experts": 0, "expert_ffn": 32, "attention": "gqa", "tied_embeddings": False}


@pytest.mark.parametrize("change,message", [
    ({"attention": "mqa"}, "m.attention: got 'mqa'; allowed: gqa, mla"),
    ({"attention": "mla"}, "m.kv_lora_rank: got 0; allowed: a whole number > 0 with attention: mla"),
    ({"top_k": 9}, "m.top_k: got 9; allowed: 1 to experts (8)"),
    ({"dense_layers": 4}, "m.dense_layers: got 4; allowed: 0 to 3"),
    ({"kv_heads": 3}, "m.kv_heads: got 3; allowed: a divisor of heads (4)"),
    ({"experts": 0}, "m.experts: got 0; allowed: a whole number >= 1"),
    ({"expert_fnn": 3}, "m.expert_fnn: got 'expert_fnn'; allowed: one of"),
    ({"reference_params": "many"}, "m.reference_params: got 'many'; allowed: a number"),
])
def test_moe_zoo_file_errors(tmp_path, change, message):
    path = tmp_path / "moe.yaml"
    path.write_text(yaml.safe_dump({"m": {**ENTRY, **change}}))
    with pytest.raises(ConfigError) as err:
        load_moe_models(str(path))
    assert str(err.value).startswith(message)


def test_tp_must_divide_or_be_a_multiple_of_the_experts():
    six = replace(arch_of("mixtral-8x7b"), experts=6)
    with pytest.raises(ConfigError, match=r"^tp: got 4; allowed: a divisor or a multiple of mixtral-8x7b.experts = 6"):
        _check_tp(six, 4)
    _check_tp(six, 2)
    _check_tp(arch_of("mixtral-8x7b"), 16)  # 16 sockets, 8 experts: each split over two


def test_unknown_predict_one_argument():
    with pytest.raises(ConfigError, match=r"^predict_one argument: got 'precison'"):
        predict_one("h100-sxm", "llama2-7b", precison="fp8")


def test_qwen3_config_with_dense_layers_is_refused(tmp_path):
    cfg = json.loads((CONFIGS / "qwen3-235b-a22b.json").read_text())
    cfg["mlp_only_layers"] = [0, 1]
    (tmp_path / "q.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"^q.json.mlp_only_layers: got \[0, 1\]"):
        get_moe_model(str(tmp_path / "q.json"))


# ------------------------------------------------------------------------------- property
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY = st.one_of(st.integers(-3, 5000), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4), st.none())


@settings(max_examples=60)
@given(platform=st.sampled_from(builtin_names()), model=st.sampled_from(MOE + ["llama2-7b"]),
       tp=st.sampled_from([1, 2, 4, 8, 16, 3]), batch=st.one_of(st.integers(1, 4096), ANY),
       prompt=st.integers(1, 9000), gen=st.integers(1, 4000),
       precision=st.sampled_from(["bf16", "fp8", "int8", "int4", "fp4"]), kv=st.sampled_from(["bf16", "fp8", "int4"]),
       hot=st.one_of(st.none(), st.integers(-1, 300)), draft=st.sampled_from([None, "llama2-7b", "mixtral-8x7b"]),
       acceptance=st.one_of(st.none(), st.floats(-0.5, 1.5)))
def test_extended_rows_give_a_result_or_one_clear_error(platform, model, tp, batch, prompt, gen, precision, kv, hot,
                                                       draft, acceptance):
    try:
        r = predict_one(platform, model, batch=batch, tp=tp, prompt=prompt, gen=gen, precision=precision,
                        kv_precision=kv, hot_experts_in_hbm=hot, draft=draft, acceptance=acceptance)
    except ConfigError as err:
        assert "\n" not in str(err) and "allowed" in str(err)
        return
    if r["fits"]:
        for key in ("ttft_ms", "decode_ms_per_token", "total_ms", "tokens_per_s_per_user"):
            assert math.isfinite(r[key]) and r[key] > 0, key
    else:
        assert r["reason"]


def test_public_checks_file_errors(tmp_path, monkeypatch):
    for rows, message in (([{"id": "a", "role": "guess"}], "public_checks.a.role: got 'guess'; allowed: fit, check, predict"),
                          ([{"id": "a", "role": "check"}], "public_checks rows: got []; allowed: exactly one row with role fit"),
                          ([{"id": "a", "role": "fit", "fitted_constant": "fp8_gemm_efficiency_vs_bf16_fraction"}],
                           "public_checks.a.fitted_constant: got 'fp8_gemm_efficiency_vs_bf16_fraction'; allowed: "
                           "fp8_gemm_efficiency_vs_bf16_fraction on a row with role check"),
                          ([{"id": "a", "role": "check", "fitted_constant": "gemm_efficiency_fraction"}],
                           "public_checks.a.fitted_constant: got 'gemm_efficiency_fraction'; allowed: "
                           "fp8_gemm_efficiency_vs_bf16_fraction on a row with role check")):
        path = tmp_path / "checks.yaml"
        path.write_text(json.dumps({"rows": rows}))
        monkeypatch.setattr(speculative, "CHECKS_FILE", path)
        speculative.load_checks.cache_clear()
        with pytest.raises(ConfigError) as err:
            speculative.load_checks()
        assert str(err.value) == message
    speculative.load_checks.cache_clear()


@pytest.mark.parametrize("change,message", [
    ({"model_type": "llama"}, "c.json.model_type: got 'llama'; allowed: a mixture-of-experts model of type mixtral"),
    ({"first_k_dense_replace": 61}, "c.json.first_k_dense_replace: got 61; allowed: a whole number from 0 to 60"),
    ({"n_routed_experts": 0}, "c.json.n_routed_experts: got 0; allowed: a whole number from 1"),
])
def test_moe_config_json_field_errors(tmp_path, change, message):
    cfg = {**json.loads((CONFIGS / "deepseek-v3.json").read_text()), **change}
    with pytest.raises(ConfigError) as err:
        moe_fields(cfg, "c.json")
    assert str(err.value).startswith(message)
