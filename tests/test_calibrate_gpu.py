"""The PyTorch measurement harness behind ``rdusim calibrate-gpu``, run on the CPU with tiny sizes."""
import json
import math
import sys

import pytest

from baselines import calibrate
from rdusim.core.platforms import load_platform
from rdusim.core.units import split_unit


def test_main_without_torch_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    out = tmp_path / "p.yaml"
    assert calibrate.main(["--tiny", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "rdusim calibrate-gpu needs PyTorch: pip install -e .[gpu]"
    assert "Traceback" not in err and not out.exists()


@pytest.fixture(scope="module")
def torch():
    """PyTorch, or a skip: everything below needs it (the test above runs without it)."""
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def measurement(torch):
    return calibrate.measure(tiny=True, models=True)


def _numbers(d, prefix=""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}", value


def test_measure_gives_positive_finite_numbers(measurement):
    m = measurement
    assert m["device"] in ("cpu", "cuda") and m["name"]
    for key, value in _numbers(m):
        assert math.isfinite(value) and value > 0, key
    assert m["hbm"]["d2d_GBps_rw"] > 0
    assert m["gemm"]["bf16_TFLOPs"] > 0
    assert m["launch"]["eager_us_per_kernel"] > 0
    if m["device"] == "cpu":
        assert m["tiny"] and m["h2d"] == {} and "graph_us_per_kernel" not in m["launch"]
    else:
        assert {"pinned_GBps", "pageable_GBps"} <= set(m["h2d"]) and m["launch"]["graph_us_per_kernel"] > 0
    (model,) = m["models"].values()
    assert "error" not in model
    for key in ("prefill_ms_bs1", "decode_eager_ms_per_step_bs1", "prefill_ms_bs2", "decode_eager_ms_per_step_bs2"):
        assert model[key] > 0
    json.dumps(m)  # the raw measurement must be JSON-serialisable for --json


def test_platform_file_loads_in_si(measurement, tmp_path):
    m = measurement
    mapping = calibrate.platform_yaml(m, "my-gpu", hbm_capacity_GB=80, hbm_bandwidth_GBps=3350,
                                      peak_bf16_TFLOPs=989, host_link_GBps=64, nvlink_bandwidth_GBps=900)
    measured = mapping["device"]["measured"]
    assert mapping["device"]["assumed"] == {}
    for name in ("published", "assumed", "measured"):
        for key in mapping["device"][name]:
            split_unit(key)  # every key carries a unit rdusim knows
    assert set(mapping["device"]["curves"]) == {"stream_copy", "stream_gemv", "gemm"}
    path = calibrate.write_platform(tmp_path / "my-gpu.yaml", mapping)
    p = load_platform(str(path))
    assert p.name == "my-gpu" and p.kind == "gpu" and p.devices == 1 and not p.assumed
    assert p.hbm_total == 80e9
    assert p.dev("hbm_bandwidth") == 3350e9 and p.dev("peak_bf16") == 989e12
    assert p.dev("host_link") == 64e9 and p.dev("nvlink_bandwidth") == 900e9
    assert p.dev("hbm_copy") == pytest.approx(m["hbm"]["d2d_GBps_rw"] * 1e9)
    assert p.dev("gemm_bf16") == pytest.approx(m["gemm"]["bf16_TFLOPs"] * 1e12)
    assert p.dev("launch_eager") == pytest.approx(m["launch"]["eager_us_per_kernel"] * 1e-6)
    if m["device"] == "cpu":
        assert set(measured) == {"hbm_copy_GBps", "gemm_bf16_TFLOPs", "launch_eager_us"}
    else:
        assert p.dev("launch_graph") == pytest.approx(m["launch"]["graph_us_per_kernel"] * 1e-6)
        assert p.dev("h2d_pinned") == pytest.approx(m["h2d"]["pinned_GBps"] * 1e9)
        assert p.dev("h2d_pageable") == pytest.approx(m["h2d"]["pageable_GBps"] * 1e9)


def test_tiny_sweep_measures_the_curves(measurement):
    sweep = measurement["sweep"]
    for name in ("stream_copy", "stream_gemv"):
        b, t = sweep[name]["bytes"], sweep[name]["time_us"]
        assert len(b) == len(t) == len(calibrate.TINY_SWEEP_BYTES) and b == sorted(b) and min(t) > 0
        assert b[0] >= 32 << 10 and b[-1] <= 4 << 20  # tiny sizes: 64 KiB to 1 MiB
    g = sweep["gemm"]
    assert len(g["m"]) == len(g["n"]) == len(g["k"]) == len(g["time_us"]) == 6 and min(g["time_us"]) > 0


def test_missing_datasheet_values_become_assumed_stand_ins(measurement, tmp_path):
    mapping = calibrate.platform_yaml(measurement, "stand-in", hbm_capacity_GB=16)
    assumed = mapping["device"]["assumed"]
    assert assumed["hbm_bandwidth_GBps"] == measurement["hbm"]["d2d_GBps_rw"]
    assert assumed["peak_bf16_TFLOPs"] == measurement["gemm"]["bf16_TFLOPs"]
    assert "nvlink_bandwidth_GBps" not in mapping["device"]["published"]
    p = load_platform(str(calibrate.write_platform(tmp_path / "s.yaml", mapping)))
    assert {"hbm_bandwidth", "peak_bf16"} <= p.assumed and "hbm_capacity" not in p.assumed
    with pytest.raises(ValueError, match="hbm_capacity_GB"):
        calibrate.platform_yaml({"device": "cpu", "hbm": {"d2d_GBps_rw": 1.0}}, "x")


def test_decode_with_kv_cache_matches_full_prefill(torch):
    """The cached decode step (RoPE at the right position, GQA over the cache) equals recomputing."""
    ctx = calibrate._Ctx(tiny=True)
    if ctx.cuda:
        pytest.skip("exactness check is for float32 on the CPU")
    cfg = calibrate.TINY_MODELS["tiny-llama"]
    model = calibrate.TinyLlama(cfg, ctx, max_batch=2, max_len=16)
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, cfg["vocab"], (2, 9), generator=gen)
    zero = torch.zeros(1, dtype=torch.long)
    with torch.inference_mode():
        full = model.forward(tokens, zero)
        model.forward(tokens[:, :8], zero)
        step = model.forward(tokens[:, 8:], torch.tensor([8]))
    torch.testing.assert_close(step, full, rtol=1e-4, atol=1e-4)


def test_main_tiny_writes_loadable_platform_and_json(torch, tmp_path, capsys):
    out, raw = tmp_path / "cal" / "dev.yaml", tmp_path / "cal" / "raw.json"
    rc = calibrate.main(["--tiny", "--out", str(out), "--json", str(raw), "--name", "calib-test",
                         "--hbm-capacity-GB", "24", "--peak-bf16-TFLOPs", "100"])
    assert rc == 0
    p = load_platform(str(out))
    assert p.name == "calib-test" and p.dev("hbm_capacity") == 24e9 and p.dev("peak_bf16") == 100e12
    assert p.dev("hbm_copy") > 0 and p.dev("launch_eager") > 0
    data = json.loads(raw.read_text())
    assert data["hbm"]["d2d_GBps_rw"] > 0 and "models" not in data
    assert "wrote" in capsys.readouterr().out


def test_written_platform_drives_rdusim_predict(torch, tmp_path):
    """A measured platform file is usable as --platform PATH, and its measured ceilings are what the model uses."""
    from baselines.gpu import GpuDevice
    from rdusim.scenarios.predict import predict_one

    out = tmp_path / "mine.yaml"
    assert calibrate.main(["--tiny", "--out", str(out), "--name", "mine", "--hbm-capacity-GB", "80"]) == 0
    dev = GpuDevice.from_platform(load_platform(str(out)))
    assert dev.copy_bandwidth == pytest.approx(load_platform(str(out)).dev("hbm_copy"))
    assert "stream_gemv" in dev.curve_source and dev.kernel_fixed >= 0  # its own measured curve is used
    assert 0 < dev.stream_rate <= dev.copy_bandwidth
    r = predict_one(str(out), "llama2-7b", 1, 1, 16, 2, "cuda-graph")
    assert r["fits"] and r["ttft_ms"] > 0 and r["decode_ms_per_token"] > 0
