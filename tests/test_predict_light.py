"""The CLI's light path (numpy only, templates cached on disk) equals the numba path, to the bit."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from baselines.gpu import GpuConstants
from rdusim.core.stacks import load_stack
from rdusim.scenarios import predict_light
from rdusim.scenarios.predict import _gpu_rows, build_gpu_template, gpu_template, predict_one
from rdusim.scenarios.predict_light import (
    gpu_rows_reference,
    gpu_times,
    load_gpu_template,
    predict_one_light,
    template_path,
)

CONST = GpuConstants.load()
# (platform, model, tp, mode): one and eight GPUs (all-reduces), every mode, a sliding-window model
GROUPS = [("h100-sxm", "llama2-7b", 1, "fused"), ("a100-sxm", "mistral-7b", 1, "eager"),
          ("dgx-h100", "llama2-70b", 8, "cuda-graph"), ("dgx-a100", "falcon-40b", 4, "eager"),
          ("dgx-h200", "bloom-176b", 8, "fused"), ("h200-sxm", "llama2-13b", 1, "cuda-graph")]


@pytest.mark.parametrize("platform,model,tp,mode", GROUPS)
def test_numpy_rows_equal_numba_rows(platform, model, tp, mode):
    """gpu_rows_reference (numpy) and _gpu_rows (numba) on 400 random rows per group: bit for bit."""
    rng = np.random.default_rng(GROUPS.index((platform, model, tp, mode)))
    n = 400
    batch, prompt, gen = rng.integers(1, 257, n), rng.integers(1, 3000, n), rng.integers(1, 1000, n)
    tpl = gpu_template(model, tp, mode)
    fast = gpu_times(tpl, _gpu_rows, platform, model, tp, mode, CONST, batch, prompt, gen)
    light = gpu_times(tpl, gpu_rows_reference, platform, model, tp, mode, CONST, batch, prompt, gen)
    for a, b in zip(fast, light):
        assert np.all(a > 0)
        np.testing.assert_array_equal(a, b)


def test_light_predict_one_equals_predict_one():
    """Random requests, OOM rows included: the light path's dict is predict_one's, every value equal."""
    rng = np.random.default_rng(11)
    checked = 0
    for platform, model, tp, mode in GROUPS:
        for _ in range(25):
            req = (platform, model, int(rng.integers(1, 513)), tp, int(rng.integers(1, 1500)),
                   int(rng.integers(1, 500)), mode)  # within every model's context window
            want = predict_one(*req)  # builds and caches the template
            got = predict_one_light(*req)
            assert got == want and list(got) == list(want)
            checked += not got["fits"]
    assert checked > 0  # some rows do not fit
    assert predict_one_light("sn40l-node", "llama2-7b", 1, 8) is None  # SN40L rows take the numba path


def test_template_cache_round_trip_and_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("RDUSIM_CACHE_DIR", str(tmp_path))
    assert load_gpu_template("llama2-7b", 2, "eager") is None
    assert predict_one_light("dgx-h100", "llama2-7b", 1, 2, 100, 10, "eager") is None
    built = build_gpu_template("llama2-7b", 2, "eager")
    predict_light.store_gpu_template("llama2-7b", 2, "eager", built)
    loaded = load_gpu_template("llama2-7b", 2, "eager")
    for name in vars(built):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(built, name))
        assert getattr(loaded, name).dtype == getattr(built, name).dtype
    assert predict_one_light("dgx-h100", "llama2-7b", 1, 2, 100, 10, "eager") is not None
    template_path("llama2-7b", 2, "eager").write_bytes(b"truncated")  # unreadable: a miss, not an error
    assert load_gpu_template("llama2-7b", 2, "eager") is None
    monkeypatch.setenv("RDUSIM_CACHE_DIR", "")  # empty: no cache at all
    assert template_path("llama2-7b", 2, "eager") is None
    predict_light.store_gpu_template("llama2-7b", 2, "eager", built)


def test_template_key_changes_with_any_source_or_input(tmp_path, monkeypatch):
    """The cache file's name hashes the model, tp, mode and the source of everything that builds a template."""
    names = {template_path(m, tp, mode).name for m in ("llama2-7b", "llama2-13b") for tp in (1, 2)
             for mode in ("eager", "fused")}
    assert len(names) == 8
    root = tmp_path / "tree"
    for entry in predict_light.TEMPLATE_SOURCES:
        src = predict_light.PACKAGE_DIR.parent / entry
        if src.is_dir():
            shutil.copytree(src, root / entry)
        else:
            (root / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / entry)
    monkeypatch.setattr(predict_light, "PACKAGE_DIR", root / "rdusim")
    predict_light._sources_digest.cache_clear()
    try:
        before = predict_light._sources_digest()
        decoder = root / "benchmarks" / "decoder.py"
        decoder.write_text(decoder.read_text() + "\n# an edit\n")
        predict_light._sources_digest.cache_clear()
        assert predict_light._sources_digest() != before
    finally:
        predict_light._sources_digest.cache_clear()


def test_cli_gpu_row_imports_neither_numba_nor_pandas():
    """Once its template is cached, `rdusim predict` of a GPU row is numpy only (the cold-start path)."""
    predict_one("h100-sxm", "llama2-7b")  # caches the template
    code = ("import sys; from rdusim.cli import main; rc = main(['predict', '--platform', 'h100-sxm', '--model', "
            "'llama2-7b', '--json']); heavy = [m for m in ('numba', 'pandas', 'scipy') if m in sys.modules]; "
            "print(heavy, file=sys.stderr); sys.exit(rc or bool(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out.pop("stack_description") == load_stack(out["stack"]).description
    assert out == predict_one("h100-sxm", "llama2-7b")
