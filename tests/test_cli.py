import subprocess
import sys

from rdusim import __version__
from rdusim.cli import main


def test_version():
    proc = subprocess.run([sys.executable, "-m", "rdusim.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_list_shows_platforms_and_models(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("sn40l-node", "dgx-h100", "llama2-7b", "bloom-176b"):
        assert name in out
    assert "6.74 B" in out
