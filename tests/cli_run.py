"""Run the `rdusim` command line in-process for the error and hardening tests."""
from __future__ import annotations

import contextlib
import io

from rdusim.cli import main


def cli(*argv: str) -> tuple[int, str, str]:
    """``rdusim ARGV...`` in this process: its exit status, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as exc:
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()
