"""The files under examples/ and the README's command-line examples run as a new user runs them."""
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rdusim.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def test_predict_frame_snippet_runs():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "predict_frame.py")], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["platform", "model"]
    assert len(lines) == 5 and all(line.rstrip().endswith("True") for line in lines[1:])
    assert "my-gpu" in proc.stdout


def test_my_gpu_platform_file_predicts(capsys):
    assert main(["predict", "--platform", str(EXAMPLES / "my-gpu.yaml"), "--model", "mistral-7b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fits"] is True and out["ttft_ms"] > 0 and out["decode_ms_per_token"] > 0
    assert out["prompt"] == 128 and out["gen"] == 128 and out["tp"] == 1 and out["execution"] == "fused"


def test_serving_trace_replays(capsys):
    trace = pd.read_csv(EXAMPLES / "my_log.csv")
    assert list(trace.columns) == ["arrival_s", "expert"] and trace.arrival_s.is_monotonic_increasing
    assert main(["serve", "--platform", "dgx-h100", "--experts", "100", "--trace", str(EXAMPLES / "my_log.csv"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] == len(trace) and out["fits"] is True
    floor = out["light_load_floor"]
    assert floor["floor_s"] == pytest.approx(floor["router_wait_s"] + floor["router_s"] + floor["expert_wait_s"]
                                             + floor["expert_s"])
    assert out["p50_s"] >= floor["floor_s"] * 0.999


def test_max_wait_moves_the_light_load_floor(capsys):
    args = ["serve", "--platform", "sn40l-node", "--experts", "100", "--rate", "0.5", "--requests", "500", "--json"]
    assert main(args) == 0
    slow = json.loads(capsys.readouterr().out)
    assert main(args + ["--max-wait", "0.005"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert slow["light_load_floor"]["router_wait_s"] == 0.05 and fast["light_load_floor"]["router_wait_s"] == 0.005
    assert fast["p50_s"] == pytest.approx(slow["p50_s"] - 0.09, abs=0.01)


def test_max_wait_rejects_bad_values(capsys):
    assert main(["serve", "--platform", "sn40l-node", "--experts", "10", "--max-wait", "soon"]) == 2
    assert "max-wait" in capsys.readouterr().err


def _readme_commands() -> list[str]:
    """The `rdusim ...` lines of the README's shell blocks (calibrate-gpu needs a GPU: left out)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("rdusim ") and "calibrate-gpu" not in line:
                commands.append(line)
    return commands


def test_readme_points_at_the_examples():
    text = (ROOT / "README.md").read_text()
    assert "examples/my-gpu.yaml" in text and "examples/my_log.csv" in text and "examples/predict_frame.py" in text
    assert "source .venv/bin/activate" in text


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_command_runs(command, capsys):
    argv = shlex.split(command)[1:]
    if argv == ["--version"]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        return
    assert main(argv) == 0, capsys.readouterr().err


def test_example_measurement_rebuilds_a_fitted_platform_without_a_gpu(tmp_path, capsys):
    """README: `rdusim calibrate-gpu --from-json examples/h100-measurement.json` works anywhere."""
    out = tmp_path / "h100-own.yaml"
    assert main(["calibrate-gpu", "--from-json", str(EXAMPLES / "h100-measurement.json"), "--out", str(out)]) == 0
    body = out.read_text()
    assert "fitted:" in body and "stream_efficiency_fraction" in body
    assert "cuda-graph decode batch 8: measured" in capsys.readouterr().out


@pytest.mark.parametrize("command, option, default", [
    ("coe", "--profile", "paper"), ("serve", "--policy", "lru"), ("serve", "--profile", "paper"),
    ("serve", "--locality", "0"), ("predict", "--batch", "1"), ("calibrate-gpu", "--nvlink-GBps", "none")])
def test_every_help_names_the_defaults(command, option, default, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    after = text[text.rindex(option + " "):]  # its help line, after the usage line
    assert f"default: {default}" in after[:260] or f"default {default}" in after[:260], after[:260]
