"""An interrupted pipeline run resumes with the same plain command (issue 12, defect 9).

Without profiles/default, a Ctrl-C that lands while a job has written part of its outputs leaves
them marked incomplete, and the next `snakemake --cores N` stops with IncompleteFilesException.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.pipeline
TARGETS = ["results/calibration/gpu_constants.yaml", "results/validation/gpu_calibration.csv"]


def _workflow(root: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for item in ("Snakefile", "workflow", "config", "environment.yml", "profiles"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    return dest


def test_interrupted_run_resumes_with_the_same_command(repo_root, tmp_path):
    work = _workflow(repo_root, tmp_path / "interrupted")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2"] + TARGETS
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first_output = work / TARGETS[0]
    incomplete = work / ".snakemake/incomplete"
    deadline = time.time() + 300
    # interrupt once the job has written its first output but is still running
    while time.time() < deadline and proc.poll() is None:
        if first_output.exists() and incomplete.exists() and any(incomplete.iterdir()):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    proc.wait(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the job finished before the interrupt landed")
    again = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "IncompleteFilesException" not in again.stderr
    # the resumed outputs equal those of an uninterrupted run
    clean = _workflow(repo_root, tmp_path / "clean")
    assert subprocess.run(cmd, cwd=clean, capture_output=True, text=True, timeout=600).returncode == 0
    for rel in TARGETS:
        assert (work / rel).read_bytes() == (clean / rel).read_bytes(), rel
    assert yaml.safe_load((repo_root / "profiles/default/config.yaml").read_text())["rerun-incomplete"] is True
