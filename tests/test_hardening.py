"""Issue 25, "Every input path hardened": one regression test per class of defect (hang or crash,
traceback, nonsense, wrong-accept, security, unclear), in the issue's order, with the issue's examples.

Every bad input must give exit status 2 (or :class:`ConfigError` from the API) with one line that names the
field, within seconds, and never a line of the file it read."""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import rdusim
from baselines import calibrate
from cli_run import cli
from rdusim.core.errors import ConfigError
from rdusim.core.loader import MAX_ALIASES, parse_json, parse_yaml
from rdusim.core.platforms import load_platform
from rdusim.core.yamltext import replace_number
from rdusim.report.configcheck import check_config, check_config_file
from rdusim.scenarios import predict_light
from rdusim.scenarios.coe import coe_latency
from rdusim.scenarios.predict import gpu_template, predict, predict_one
from rdusim.scenarios.serve import poisson_requests, read_trace, simulate

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ROOT / "rdusim/data/platforms"
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
SECRET = "root:$6$SECRETHASHVALUE:19000:0:99999:7:::"  # what /etc/shadow holds: an error may never show it
MEASUREMENT = {"device": "cuda", "name": "Test GPU", "memory_GB": 80.0, "hbm": {"d2d_GBps_rw": 3000.0},
               "gemm": {"bf16_TFLOPs": 700.0, "dtype": "bfloat16"},
               "launch": {"eager_us_per_kernel": 8.0, "graph_us_per_kernel": 1.2},
               "sweep": {"stream_copy": {"bytes": [1e6, 1e7, 1e8], "time_us": [3.0, 6.0, 36.0]}}}


def refused(*argv: str, names: str) -> str:
    """Exit 2 with one line that names ``names`` and never the secret."""
    rc, out, err = cli(*argv)
    assert rc == 2, (rc, out, err)
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err, err
    assert names in err, err
    assert "SECRET" not in err and "SECRET" not in out, err
    return err


def platform_file(tmp_path, text: str, name: str = "p.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def h100(tmp_path, extra: str = "", old: str = "", new: str = "") -> str:
    """The H100 platform file with ``old`` replaced and ``extra`` (lines of the device block) at that block's end."""
    text = (PLATFORMS / "h100-sxm.yaml").read_text()
    text = text.replace(old, new) if old else text
    if extra:
        assert "\npower:" in text
        text = text.replace("\npower:", "\n" + extra.rstrip("\n") + "\npower:", 1)
    return platform_file(tmp_path, text)


def sn40l(tmp_path, old: str, new: str) -> str:
    text = (PLATFORMS / "sn40l.yaml").read_text()
    assert old in text
    return platform_file(tmp_path, text.replace(old, new))


def bomb(levels: int = 9, width: int = 9) -> str:
    """The billion-laughs document: ``width ** levels`` strings from a few hundred bytes."""
    lines = ['l0: &l0 "' + "lol" * 3 + '"']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines)


def calibrate_cli(tmp_path, measurement=None, raw: bytes | None = None, out: str | None = None, *extra: str):
    path = tmp_path / "m.json"
    path.write_bytes(raw if raw is not None else json.dumps(measurement).encode())
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = calibrate.main(["--from-json", str(path), "--out", out or str(tmp_path / "p.yaml"), *extra])
        except SystemExit as exc:  # a usage error of argparse
            rc = exc.code
    return rc, err.getvalue()


# ================================================================================ hang or crash
@pytest.mark.parametrize("where", ["description", "kind", "devices", "name", "curves"])
def test_hang_alias_bomb_in_a_platform_file_is_refused_at_once(tmp_path, where):
    base = (PLATFORMS / "h100-sxm.yaml").read_text()
    bomb_text = bomb() + "\n"
    if where == "curves":
        text = bomb_text + base + "  curves: *l9\n"
    else:
        text = bomb_text + "\n".join(f"{where}: *l9" if line.startswith(f"{where}:") else line
                                     for line in base.splitlines()) + (f"\n{where}: *l9\n" if where == "devices" else "\n")
    refused("predict", "--platform", platform_file(tmp_path, text), "--model", "llama2-7b", names="line")


def test_hang_yaml_aliases_and_expansion_bounded():
    with pytest.raises(ConfigError, match="aliases"):
        parse_yaml("a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n", "f.yaml")
    with pytest.raises(ConfigError, match="alias bomb"):
        parse_yaml(bomb(levels=6, width=8), "f.yaml")  # 48 aliases, 262,144 strings
    with pytest.raises(ConfigError, match="recursive"):
        parse_yaml("a: &a [*a]\n", "f.yaml")
    assert parse_yaml("a: &x {k: 1}\nb: *x\nc: {<<: *x, j: 2}\n", "f.yaml") == {"a": {"k": 1}, "b": {"k": 1},
                                                                                  "c": {"k": 1, "j": 2}}


def test_hang_a_50_mb_yaml_is_refused_by_size(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as fh:
        fh.truncate(50 << 20)  # sparse: costs no disk
    refused("predict", "--platform", str(path), "--model", "llama2-7b", names="MiB")


def test_hang_from_json_of_a_large_sweep_or_file_is_refused(tmp_path):
    big = {**MEASUREMENT, "sweep": {"stream_copy": {"bytes": list(range(1, 5002)), "time_us": [1.0] * 5001}}}
    rc, err = calibrate_cli(tmp_path, big)
    assert rc == 2 and "sweep.stream_copy.bytes" in err and "1,000" in err
    path = tmp_path / "huge.json"
    with open(path, "wb") as fh:
        fh.truncate(100 << 20)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert calibrate.main(["--from-json", str(path), "--out", str(tmp_path / "p.yaml")]) == 2
    assert "MiB" in err.getvalue()


def test_hang_zero_filled_trace_is_refused_at_once(tmp_path):
    path = tmp_path / "zeros.csv"
    with open(path, "wb") as fh:
        fh.truncate(200 << 20)
    refused("serve", "--platform", "sn40l-node", "--experts", "4", "--trace", str(path), names="NUL byte")


def test_hang_pipeline_config_with_an_anchor_bomb(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(bomb() + "\n" + (ROOT / "config/config.yaml").read_text())
    with pytest.raises(ConfigError, match="line"):
        check_config_file(path)


# ================================================================================ traceback
@pytest.mark.parametrize("key, value", [("pcus_count: 1040", "pcus_count: 1040.5"),
                                        ("pmus_count: 1040", "pmus_count: 1040.25"),
                                        ("simd_lanes_count: 32", "simd_lanes_count: 32.5"),
                                        ("simd_stages_count: 6", "simd_stages_count: 6.5"),
                                        ("systolic_rows_count: 16", "systolic_rows_count: 16.5"),
                                        ("systolic_cols_count: 12", "systolic_cols_count: 12.5"),
                                        ("pcus_count: 1040", "pcus_fraction: 0.5")])
def test_traceback_fractional_counts_in_an_sn40l_platform(tmp_path, key, value):
    refused("predict", "--platform", sn40l(tmp_path, key, value), "--model", "llama2-7b",
            names=value.split(":")[0])


@pytest.mark.parametrize("curve, names", [
    ("stream_copy: {bytes: [1000000], time_us: [10]}", "stream_copy.bytes"),
    ("stream_copy: {bytes: [1000000, 1000000], time_us: [10, 12]}", "two sizes"),
    ("stream_copy: {bytes: [1.0e+300, 2.0e+300], time_us: [10, 20]}", "stream_copy.bytes.0"),
    ("stream_gemv: {bytes: [1000000, 2000000], time_us: [1.0e-30, 1.0e+30]}", "stream_gemv.time_us.0"),
    ("gemm: {m: [1, 8.5], n: [4096, 4096], k: [4096, 4096], time_us: [10, 20]}", "gemm.m.1"),
    ("gemm: [1, 2]", "curves.gemm"),
])
def test_traceback_one_point_or_enormous_curves(tmp_path, curve, names):
    refused("predict", "--platform", h100(tmp_path, f"  curves:\n    {curve}\n"), "--model", "llama2-7b", names=names)


@pytest.mark.parametrize("change, names", [
    ({"gemm": [1, 2]}, "measurement.gemm"), ({"gemm": "fast"}, "measurement.gemm"),
    ({"sweep": [1]}, "measurement.sweep"), ({"sweep": "x"}, "measurement.sweep"),
    ({"models": [1]}, "measurement.models"), ({"models": "x"}, "measurement.models"),
    ({"models": {"m": {"prompt": 1e308, "config": {}}}}, "models.m.prompt"),
    ({"hbm": {"d2d_GBps_rw": 0}}, "hbm.d2d_GBps_rw"), ({"memory_GB": -1}, "memory_GB"),
    ({"launch": {"eager_us_per_kernel": 0.0, "graph_us_per_kernel": 0.0}}, "launch.eager_us_per_kernel"),
])
def test_traceback_from_json_blocks_of_the_wrong_type(tmp_path, change, names):
    rc, err = calibrate_cli(tmp_path, {**MEASUREMENT, **change})
    assert rc == 2 and names in err and err.count("\n") == 1, err
    assert not (tmp_path / "p.yaml").exists()


@pytest.mark.parametrize("raw, names", [
    (b'{"hbm": {"d2d_GBps_rw": Infinity}}', "finite"),
    (b'{"hbm": {"d2d_GBps_rw": 1e999}}', "finite"),
    (b"[" * 30 + b"]" * 30, "levels"),
    (b'{"a": ' * 30 + b"1" + b"}" * 30, "levels"),
    (bytes(range(256)) * 8, "--from-json"),
    (b"\x00" * 4096, "NUL byte"),
    (b'{"hbm": {}, "hbm": {}}', "twice"),
])
def test_traceback_from_json_unreadable_files(tmp_path, raw, names):
    rc, err = calibrate_cli(tmp_path, raw=raw)
    assert rc == 2 and names in err and err.count("\n") == 1, err


def test_traceback_from_json_all_zeros(tmp_path):
    zeros = json.loads(json.dumps(MEASUREMENT), parse_float=lambda s: 0.0, parse_int=lambda s: 0)
    rc, err = calibrate_cli(tmp_path, zeros)
    assert rc == 2 and "measurement." in err, err


@pytest.mark.parametrize("out", ["dir", "/dev/full", "file/p.yaml"])
def test_traceback_unwritable_out_is_refused_before_anything_is_read(tmp_path, out):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    target = out if out.startswith("/") else str(tmp_path / out)
    rc, err = calibrate_cli(tmp_path, raw=b"not even json", out=target)  # --out is checked first
    assert rc == 2 and err.startswith("rdusim calibrate-gpu: error: --out") and err.count("\n") == 1, err


def frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"platform": ["h100-sxm", "sn40l", "a100-sxm"][:n], "model": ["llama2-7b"] * n,
                         "batch": [1, 2, 4][:n], "tp": [1] * n, "prompt": [128] * n, "gen": [16] * n})


@pytest.mark.parametrize("dtypes", [{"batch": "Int64", "tp": "Int64", "prompt": "Int32", "gen": "UInt16"},
                                    {"batch": "Float64", "prompt": "float32"},
                                    {"platform": "string", "model": "string"},
                                    {"platform": "category", "model": "category", "batch": "category"},
                                    {"platform": object, "batch": object}])
def test_traceback_predict_takes_nullable_and_categorical_dtypes(dtypes):
    want = predict(frame())
    got = predict(frame().astype(dtypes))
    assert got["ttft_ms"].tolist() == want["ttft_ms"].tolist() and got["fits"].tolist() == want["fits"].tolist()


@pytest.mark.parametrize("column, values, names", [
    ("batch", pd.array([1, None, 2], dtype="Int64"), "row 1: batch"),
    ("platform", [["h100-sxm"], "sn40l", "a100-sxm"], "row 0: platform"),
    ("model", [{"a": 1}, "llama2-7b", "llama2-7b"], "row 0: model"),
    ("batch", [True, 1, 2], "row 0: batch"),
])
def test_traceback_predict_names_the_column_it_cannot_take(column, values, names):
    with pytest.raises(ConfigError, match=names):
        predict(frame().assign(**{column: values}))


@pytest.mark.parametrize("call, names", [
    (lambda: coe_latency(["sn40l-node"], 10, 1, 20), "platform"),
    (lambda: coe_latency("sn40l-node", 10, 1, 20, profile=["paper"]), "profile"),
    (lambda: coe_latency("sn40l-node", 10, 1, 20, dep={"tensor_parallel": 8}), "dep"),
    (lambda: coe_latency("sn40l-node", 3, 1, 20, popularity="abc"), "popularity"),
    (lambda: coe_latency("sn40l-node", 3, 1, 20, popularity=[1, float("nan"), 1]), "popularity"),
    (lambda: simulate({"a": 1}, 4, poisson_requests(2, 20, 4)), "platform"),
    (lambda: simulate("sn40l-node", 4, poisson_requests(2, 20, 4), policy=["lru"]), "policy"),
    (lambda: simulate("sn40l-node", 4, poisson_requests(2, 20, 4), profile={"a": 1}), "profile"),
    (lambda: simulate("sn40l-node", 4, poisson_requests(2, 20, 4), overlap="yes"), "overlap"),
    (lambda: simulate("sn40l-node", 4, poisson_requests(2, 20, 4).values), "trace"),
    (lambda: simulate("sn40l-node", 4, poisson_requests(2, 20, 4).assign(expert=True)), "expert"),
])
def test_traceback_api_wrong_argument_types_name_the_argument(call, names):
    with pytest.raises(ConfigError, match=names):
        call()


def test_traceback_template_cache_of_another_shape_is_discarded_and_rebuilt():
    want = predict_one("h100-sxm", "llama2-7b", 2, 1, 64, 8, "fused")
    path = predict_light.template_path("llama2-7b", 1, "fused")
    good = path.read_bytes()
    for bad in (b"", good[: len(good) // 2], b"PK\x03\x04" + os.urandom(200)):
        path.write_bytes(bad)
        assert predict_light.load_gpu_template("llama2-7b", 1, "fused") is None and not path.exists()
    arrays = dict(np.load(io.BytesIO(good)))
    for name, value in (("prefill", np.zeros((2, 3))), ("decode", np.full_like(arrays["decode"], np.nan))):
        forged = {**arrays, name: value}
        forged["sha256"] = predict_light._template_digest({k: v for k, v in forged.items() if k != "sha256"})
        np.savez(path, **forged)
        assert predict_light.load_gpu_template("llama2-7b", 1, "fused") is None
    np.savez(path, **{**arrays, "decode": arrays["decode"] * 2})  # a changed array: its checksum no longer matches
    assert predict_light.load_gpu_template("llama2-7b", 1, "fused") is None
    gpu_template.cache_clear()
    assert predict_one("h100-sxm", "llama2-7b", 2, 1, 64, 8, "fused") == want  # rebuilt and stored again
    assert predict_light.load_gpu_template("llama2-7b", 1, "fused") is not None


def test_traceback_unwritable_cache_warns_once_and_runs(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("RDUSIM_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(predict_light, "_WARNED", [])
    tpl = gpu_template("llama2-7b", 1, "fused")
    predict_light.store_gpu_template("llama2-7b", 1, "fused", tpl)
    predict_light.store_gpu_template("llama2-7b", 1, "eager", tpl)
    err = capsys.readouterr().err
    assert err.count("warning: cannot write the template cache") == 1 and err.count("\n") == 1


def test_traceback_read_only_install_sends_numba_cache_to_a_temp_folder(monkeypatch):
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    monkeypatch.setattr(os, "environ", environ)  # the process's own environment is left alone
    monkeypatch.setattr(rdusim, "_can_write", lambda folder: False)
    rdusim._numba_cache_fallback()
    assert environ["NUMBA_CACHE_DIR"].startswith(os.path.join(tempfile.gettempdir(), "rdusim-numba"))
    del environ["NUMBA_CACHE_DIR"]
    monkeypatch.setattr(rdusim, "_can_write", lambda folder: True)
    rdusim._numba_cache_fallback()
    assert "NUMBA_CACHE_DIR" not in environ


# ================================================================================ nonsense
def test_nonsense_hit_rate_and_utilisation_stay_within_0_and_1():
    trace = poisson_requests(1e6, 3000, 64, skew=0.5, seed=3)
    summary, _ = simulate("dgx-h100", 64, trace)
    assert summary["fits"]
    assert 0 <= summary["hbm_hit_rate"] <= 1 and 0 <= summary["utilisation"] <= 1


def test_nonsense_denormal_fitted_gemm_efficiency_is_refused(tmp_path):
    refused("predict", "--platform", h100(tmp_path, "  fitted:\n    gemm_efficiency_fraction: 1.0e-310\n"),
            "--model", "llama2-7b", names="gemm_efficiency_fraction")


def test_nonsense_never_nan_with_fits_true():
    out = predict(frame())
    fits = out["fits"].to_numpy(bool)
    assert np.all(np.isfinite(out.loc[fits, ["ttft_ms", "decode_ms_per_token", "total_ms"]].to_numpy(float)))
    r = coe_latency("dgx-h100", 16, 4, 20)
    assert r.fits and all(math.isfinite(v) for v in (r.router_s, r.switching_s, r.execution_s, r.total_s))


# ================================================================================ wrong-accept
@pytest.mark.parametrize("text, key, lines", [
    ("name: a\nkind: gpu\nname: b\n", "'name'", "line 3"),
    ("name: a\nkind: gpu\ndevice: {published: {hbm_capacity_GB: 80, hbm_capacity_GB: 40}}\n", "'hbm_capacity_GB'", "line 3"),
    ("name: a\nkind: gpu\ndevice:\n  published: {hbm_capacity_GB: 80}\ndevice:\n  published: {}\n", "'device'", "line 5"),
    ("name: a\nkind: gpu\ndevice:\n  published:\n    hbm_capacity_GB: 80\n    hbm_capacity_GB: 40\n", "'hbm_capacity_GB'", "line 6"),
])
def test_wrong_accept_duplicate_keys_in_a_platform_file(tmp_path, text, key, lines):
    err = refused("predict", "--platform", platform_file(tmp_path, text), "--model", "llama2-7b", names=key)
    assert lines in err and "first on line" in err


def test_wrong_accept_duplicate_keys_in_the_pipeline_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text((ROOT / "config/config.yaml").read_text() + "\nserving: {}\n")
    with pytest.raises(ConfigError, match="'serving' again"):
        check_config_file(path)
    assert "check_config_file" in (ROOT / "Snakefile").read_text().split("configfile:")[0]


def test_wrong_accept_a_platform_name_that_is_a_mapping(tmp_path):
    refused("predict", "--platform", h100(tmp_path, old="name: h100-sxm", new="name: {a: 1}"), "--model",
            "llama2-7b", names=".name")


def test_wrong_accept_node_without_a_device_link_at_tp8(tmp_path):
    single = h100(tmp_path, old="    nvlink_bandwidth_GBps: 900", new="")
    node = platform_file(tmp_path, f"name: node\nkind: gpu\ndevices: 8\ndevice_file: {Path(single).name}\n", "node.yaml")
    refused("predict", "--platform", node, "--model", "llama2-7b", "--tp", "8", names="nvlink_bandwidth")
    assert predict_one(node, "llama2-7b", 1, 1, 16, 4)["fits"]  # one GPU needs no link


@pytest.mark.parametrize("flag", ["--rate", "--max-wait", "--zipf", "--locality", "--experts", "--requests", "--seed"])
@pytest.mark.parametrize("text", ["８", "1_0", "٣", "0x1", "1e", "nan"])
def test_wrong_accept_numbers_are_ascii_decimal(flag, text):
    args = {"--experts": "4", "--rate": "2", "--requests": "20"}
    args[flag] = text
    refused("serve", "--platform", "sn40l-node", *[x for kv in args.items() for x in kv], names=flag.strip("-"))


@pytest.mark.parametrize("flag", ["--batch", "--tp", "--prompt", "--gen"])
def test_wrong_accept_predict_numbers_are_ascii_decimal(flag):
    refused("predict", "--platform", "h100-sxm", "--model", "llama2-7b", flag, "８", names=flag.strip("-"))


def test_wrong_accept_calibrate_flags_are_ascii_decimal(tmp_path):
    rc, err = calibrate_cli(tmp_path, MEASUREMENT, None, None, "--hbm-capacity-GB", "８０")
    assert rc == 2 and "hbm-capacity-GB" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("text, names", [
    ("arrival_s,expert\n0.1,1\n0.2\n", "line 3"),
    ("arrival_s,expert\n0.1,1\n0.2,1,3\n", "line 3"),
    ("arrival_s,expert\n0.1,True\n", "row 0: expert"),
    ("arrival_s,expert\n0.1,1.5\n", "row 0: expert"),
    ("arrival_s,expert\n0.1,１\n", "row 0: expert"),
    ("arrival_s,expert,expert\n0.1,1,2\n", "twice"),
    ("arrival_s,arrival_s,expert\n0.1,0.2,2\n", "twice"),
    ("arrival_s,expert\n1_0,1\n", "row 0: arrival_s"),
    ("arrival_s,expert\n0.1,7\n", "row 0: expert"),
])
def test_wrong_accept_traces(tmp_path, text, names):
    path = tmp_path / "t.csv"
    path.write_text(text)
    refused("serve", "--platform", "sn40l-node", "--experts", "4", "--trace", str(path), names=names)


def test_trace_reader_sorts_and_keeps_whole_ids(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("expert,note,arrival_s\n3,a,0.5\n1.0,b,0.25\n\n0,\"c,d\",0.5\n")
    trace = read_trace(str(path), 4)
    assert trace["arrival_s"].tolist() == [0.25, 0.5, 0.5] and trace["expert"].tolist() == [1, 3, 0]
    assert trace["expert"].dtype == np.int64


@pytest.mark.parametrize("change, names", [
    ({"memory_GB": 1e30}, "memory_GB"), ({"hbm": {"d2d_GBps_rw": 1e30}}, "d2d_GBps_rw"),
    ({"sweep": {"stream_copy": {"bytes": [1e6, 2e6], "time_us": [1e-24, 1e-24]}}}, "time_us"),
    ({"sweep": {"stream_copy": {"bytes": [1e6, 2e6], "time_us": [1e36, 1e36]}}}, "time_us"),
    ({"launch": {"eager_us_per_kernel": 3.6e9}}, "eager_us_per_kernel"),
])
def test_wrong_accept_physically_impossible_measurements(tmp_path, change, names):
    rc, err = calibrate_cli(tmp_path, {**MEASUREMENT, **change})
    assert rc == 2 and names in err, err


def test_from_json_accepted_means_predict_accepts(tmp_path):
    rc, err = calibrate_cli(tmp_path, MEASUREMENT)
    assert rc == 0, err
    r = predict_one(str(tmp_path / "p.yaml"), "llama2-7b", 1, 1, 32, 4, "cuda-graph")
    assert r["fits"] and r["ttft_ms"] > 0


def test_wrong_accept_serving_seed_beyond_32_bits():
    cfg = check_config_file(ROOT / "config/config.yaml")
    check_config(cfg, SCHEMA)
    bad = copy.deepcopy(cfg)
    bad["serving"]["seed"] = 2**64
    with pytest.raises(ConfigError, match="serving.seed"):
        check_config(bad, SCHEMA)


# ================================================================================ security
def test_security_platform_and_trace_files_are_never_echoed(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.write_text(SECRET + "\ndaemon:*:19000:0:99999:7:::\n")
    (tmp_path / "shadow.yaml").symlink_to(shadow)
    refused("predict", "--platform", str(tmp_path / "shadow.yaml"), "--model", "llama2-7b", names="shadow")
    refused("serve", "--platform", "sn40l-node", "--experts", "4", "--trace", str(shadow), names="trace")
    node = platform_file(tmp_path, "name: n\nkind: gpu\ndevices: 8\ndevice_file: shadow.yaml\n", "node.yaml")
    refused("predict", "--platform", node, "--model", "llama2-7b", names="shadow")
    for text in (f"kind: {SECRET}\n", f"name: x\nkind: gpu\ndevice:\n  published: {{'{SECRET}': 1}}\n",
                 f"[{SECRET}\n", f"name: x\nkind: gpu\ndescription: [{SECRET}]\n"):
        refused("predict", "--platform", platform_file(tmp_path, text), "--model", "llama2-7b", names="p")


def test_security_yaml_and_json_parser_messages_quote_nothing():
    for text in (f"a: '{SECRET}\n", f"a: !!python/object:{SECRET} x\n", f"a: *{SECRET[:4]}\n", f"- a\nb: {SECRET}\n"):
        with pytest.raises(ConfigError) as exc:
            parse_yaml(text, "f.yaml")
        assert "SECRET" not in str(exc.value) and "line" in str(exc.value)
    for text in (f'{{"{SECRET}": 1, "{SECRET}": 2}}', f'{{"a": {SECRET}}}'):
        with pytest.raises(ConfigError) as exc:
            parse_json(text, "m.json")
        assert "SECRET" not in str(exc.value)


def test_security_tests_cannot_reach_a_slurm_controller():
    for name in ("scontrol", "sinfo", "squeue", "sacct", "sbatch"):
        found = shutil.which(name)
        assert found and "slurm-stubs" in found, found
    assert not any(k.startswith("SLURM_") for k in os.environ)


# ================================================================================ unclear
def test_unclear_usage_errors_are_one_line():
    rc, _, err = cli("serve", "--platform", "sn40l-node", "--experts", "4", "--policy", "fifo")
    assert rc == 2 and err.count("\n") == 1 and "--policy" in err
    rc, _, err = cli("predict", "--model", "llama2-7b")
    assert rc == 2 and err.count("\n") == 1 and "--platform" in err


def test_unclear_a_path_with_a_newline_stays_one_line(tmp_path):
    path = tmp_path / "a\nb.csv"
    path.write_text("x")
    refused("serve", "--platform", "sn40l-node", "--experts", "4", "--trace", str(path), names="trace")


def _import_kernel(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_traceback_corrupt_numba_cache_entries_are_recompiled(tmp_path):
    """A truncated index and a garbage data file in numba's cache: a cache miss, never an unpickling error."""
    source = tmp_path / "kernel25.py"
    source.write_text("from rdusim.core.jit import njit\n\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    first = _import_kernel(source, "kernel25_a")
    assert first.twice(21) == 42  # compiled and cached (next to the source, or in NUMBA_CACHE_DIR)
    entries = list(Path(first.twice._cache.cache_path).glob("kernel25.twice-*"))
    assert {p.suffix for p in entries} == {".nbi", ".nbc"}
    for p in entries:
        p.write_bytes(p.read_bytes()[:7] if p.suffix == ".nbi" else b"garbage\n")
    assert _import_kernel(source, "kernel25_b").twice(4) == 8
    for p in entries:
        p.write_bytes(b"garbage\n")
    assert _import_kernel(source, "kernel25_c").twice(5) == 10


def test_every_file_is_read_through_the_loader():
    """No module parses a file by itself: YAML, JSON and CSV go through rdusim.core.loader (and
    rdusim.core.tables for the pipeline's own CSVs), so every reader has the size limit, the strict parser and
    the errors that never echo content. A new reader: use load_yaml / load_json / read_csv_columns / read_table."""
    import re

    pattern = re.compile(r"yaml\.(safe_)?load\(|json\.loads?\(|pd\.read_csv\(|np\.load\(|pickle\.load")
    allowed = {"rdusim/core/loader.py", "rdusim/core/tables.py",
               "rdusim/scenarios/predict_light.py"}  # np.load of the template cache, checked by SHA-256 and shape
    offenders = []
    for folder in ("rdusim", "baselines", "benchmarks", "workflow"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".smk") or "__pycache__" in path.parts:
                continue
            rel = str(path.relative_to(ROOT))
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and rel not in allowed:
                    offenders.append(f"{rel}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_traceback_no_writable_cache_folder_at_all_compiles_without_a_cache(monkeypatch):
    """numba raises "no locator available" at import where no cache folder can be written: the kernel then
    runs uncached instead."""
    from numba.core import caching

    from rdusim.core.jit import njit

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])

    @njit(cache=True)
    def plus_one(x):
        return x + 1

    assert plus_one(1) == 2


def test_a_fits_write_replaces_exactly_one_number():
    """Every fit's --write goes through replace_number: comments kept, and a key that is missing or repeated
    is an error naming the file, never a silently unwritten constant."""
    text = "a:\n  value: 0.5   # fitted\nb:\n  value: 2\n"
    assert replace_number(text, r"a:\n  value: ", "0.25", "f.yaml: a") == "a:\n  value: 0.25   # fitted\nb:\n  value: 2\n"
    for prefix in (r"c:\n  value: ", r"value: "):
        with pytest.raises(ConfigError, match="f.yaml"):
            replace_number(text, prefix, "1", "f.yaml")
