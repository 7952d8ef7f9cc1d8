"""Small helpers for pipeline scripts: send a script's output and errors to its Snakemake log."""
from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(log_path: str):
    """Run the block with logging, stdout and stderr appended to ``log_path``; log any exception."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        logging.basicConfig(stream=fh, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        try:
            yield logging.getLogger("rdusim")
        except Exception:
            traceback.print_exc(file=fh)
            raise


def write_csv(frame, path: str) -> None:
    """Write a result table (creating its folder), without the index."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    print(f"wrote {path}: {len(frame)} rows", file=sys.stderr)
