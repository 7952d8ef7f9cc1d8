"""The fast SN40L path (one decoder layer planned, its kernels repeated; plans cached without the
chip's bandwidths) equals the full-graph path on every output."""
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.decoder import layer_graph, workload_graph
from benchmarks.models import get_model, load_models
from rdusim.core.accounting import graph_footprint, repeated_footprint
from rdusim.core.errors import ConfigError
from rdusim.scenarios.predict import predict, rdu_chip, rdu_pass, rdu_pass_reference
from rdusim.sn40l.run import EXECUTION_MODES, evaluate
from rdusim.sn40l.tiled import evaluate_tiled

MODELS = sorted(load_models())
PHASES = ("prefill", "decode")
RTOL = 1e-9


def _tp(model: str, platform: str, rng) -> int:
    m = get_model(model)
    choices = [t for t in (1, 2, 4, 8) if all(v % t == 0 for v in (m.heads, m.ffn, m.vocab))]
    return int(rng.choice(choices)) if platform == "sn40l-node" else 1


def _configs(n: int, seed: int):
    """``n`` random SN40L configurations; every model, phase and mode appears (round-robin)."""
    rng = np.random.default_rng(seed)
    modes = list(EXECUTION_MODES)
    out = []
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        phase = PHASES[(i // len(MODELS)) % 2]
        mode = modes[(i // (2 * len(MODELS))) % 3]
        platform = ("sn40l", "sn40l-node")[int(rng.integers(2))]
        chip = rdu_chip(platform).with_(
            hbm_bandwidth=rdu_chip(platform).hbm_bandwidth * rng.uniform(0.25, 4),
            ddr_bandwidth=rdu_chip(platform).ddr_bandwidth * rng.uniform(0.25, 4),
            hbm_bytes=rdu_chip(platform).hbm_bytes * rng.choice([0.25, 0.5, 1.0, 2.0]),
            so_launch=rdu_chip(platform).so_launch * rng.uniform(0.5, 2))
        out.append((chip, model, phase, int(rng.integers(1, 65)), int(rng.integers(1, 6000)),
                    _tp(model, platform, rng), mode))
    return out


def _close(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= RTOL * max(abs(a), abs(b)) or a == b
    return a == b


@pytest.mark.parametrize("chunk", range(4))
def test_fast_path_equals_full_graph_on_random_configs(chunk):
    """520 random configurations (every model, phase and mode; random chip bandwidths, HBM size and
    launch cost): the tiled plan's whole result and rdu_pass's (fits, reason, time) equal the
    full graph's, relative difference <= 1e-9."""
    fits = 0
    for chip, model, phase, batch, seq, tp, mode in _configs(520, 11)[chunk::4]:
        ref = rdu_pass_reference(chip, model, phase, batch, seq, tp, mode)
        fast = rdu_pass(chip, model, phase, batch, seq, tp, mode)
        assert fast[0] == ref.fits and fast[1] == ref.reason and _close(fast[2], ref.time_s), \
            (model, phase, mode, batch, seq, tp, fast, ref)
        full = evaluate_tiled(*layer_graph(get_model(model), phase, batch, seq, tp), chip, mode).as_dict()
        for key, value in ref.as_dict().items():
            assert _close(value, full[key]), (model, phase, mode, batch, seq, tp, key, value, full[key])
        fits += ref.fits
    assert fits > 60  # most configurations run (the rest check the OOM reasons)


@pytest.mark.parametrize("model", MODELS)
def test_repeated_footprint_equals_full_graph(model):
    m = get_model(model)
    for phase in PHASES:
        g, repeats = layer_graph(m, phase, 3, 700, 1)
        assert repeated_footprint(g, repeats) == graph_footprint(workload_graph(m, phase, 3, 700, 1))
        assert repeats[0] == m.layers


def test_layer_graph_rejects_training():
    with pytest.raises(ConfigError, match="phase"):
        layer_graph(get_model("llama2-7b"), "train", 1, 128)


def test_full_graph_evaluate_is_unchanged_reference():
    """The reference path is the plain evaluator of the whole graph."""
    chip = rdu_chip("sn40l")
    ref = rdu_pass_reference(chip, "llama2-7b", "decode", 4, 1000, 1, "fused-ho")
    assert ref == evaluate(workload_graph(get_model("llama2-7b"), "decode", 4, 1000, 1), chip, "fused-ho")


def test_predict_sn40l_rows_follow_the_evaluator():
    """predict's SN40L rows: times from the full graphs, and one memory rule: a row fits only if the
    evaluator places both passes (the KV cache and activations in HBM)."""
    rng = np.random.default_rng(3)
    n = 120
    frame = pd.DataFrame({"platform": rng.choice(["sn40l", "sn40l-node"], n), "model": rng.choice(MODELS, n),
                          "batch": rng.integers(1, 65, n), "prompt": rng.integers(16, 4097, n),
                          "gen": rng.integers(1, 513, n), "execution": rng.choice(list(EXECUTION_MODES), n)})
    frame["tp"] = [_tp(m, p, rng) for m, p in zip(frame.model, frame.platform)]
    frame["stack"] = "kernels"  # the SN40L model's kernel time (the default stack adds the runtime's work)
    window = np.array([get_model(m).context_window for m in frame.model])
    frame["prompt"] = np.minimum(frame["prompt"], window - frame["gen"])  # inside each model's context window
    out = predict(frame)
    assert not (out.fits & out.ttft_ms.isna()).any()
    assert not out.fits.all() and out.fits.any()
    for r in out.itertuples():
        chip = rdu_chip(r.platform)
        p = rdu_pass_reference(chip, r.model, "prefill", r.batch, r.prompt, r.tp, r.execution)
        d = rdu_pass_reference(chip, r.model, "decode", r.batch, r.prompt + r.gen // 2, r.tp, r.execution)
        if r.fits:
            assert p.fits and d.fits
            assert _close(r.ttft_ms, p.time_s * 1e3) and _close(r.decode_ms_per_token, d.time_s * 1e3)
            assert _close(r.total_ms, p.time_s * 1e3 + r.gen * d.time_s * 1e3)
        elif p.fits and d.fits:
            assert r.reason  # the closed-form check at the last token (KV cache at L + G)
        else:
            assert r.reason == (p.reason or d.reason) or r.reason.startswith(("KV cache", "weights need"))
