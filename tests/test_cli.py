import subprocess
import sys

from rdusim import __version__
from rdusim.cli import main


def test_version():
    proc = subprocess.run([sys.executable, "-m", "rdusim.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_console_script_freezes_the_heap_after_main_only():
    # the program (rdusim.cli.run, the console script) freezes its objects so that shutdown does not collect them;
    # main() called in a long-lived process leaves the collector alone
    code = ("import gc, sys; from rdusim import cli; assert cli.main(['list']) == 0 and gc.get_freeze_count() == 0; "
            "sys.argv = ['rdusim', 'list']; print(cli.run(), gc.get_freeze_count() > 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split()[-2:] == ["0", "True"]


def test_list_shows_platforms_and_models(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("sn40l-node", "dgx-h100", "llama2-7b", "bloom-176b"):
        assert name in out
    assert "6.74 B" in out
