"""Small helpers for pipeline scripts: send a script's output and errors to its Snakemake log; write result
tables; the ``python -m`` entry of a validation that writes a table and its summary."""
from __future__ import annotations

import argparse
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


def table_and_summary_main(description: str, stem: str, table_fn, summary_fn, argv=None) -> None:
    """``python -m rdusim.report.<validation>``: compute ``table_fn()`` and its ``summary_fn(table)``, write them
    to ``--out`` and ``--summary`` (default ``results/validation/<stem>{,_summary}.csv``) and print the summary."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=f"results/validation/{stem}.csv")
    parser.add_argument("--summary", default=f"results/validation/{stem}_summary.csv")
    args = parser.parse_args(argv)
    table = table_fn()
    summary = summary_fn(table)
    write_csv(table, args.out)
    write_csv(summary, args.summary)
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
