"""The ``rdusim`` command line. Bad input exits with status 2 and one line naming what is allowed."""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import RdusimError


def _cmd_list(args) -> int:
    from benchmarks.models import load_models, param_count
    from .platforms import builtin_names, load_platform

    print("platforms:")
    for name in builtin_names():
        p = load_platform(name)
        print(f"  {name:12s} {p.kind:3s} {p.devices} x device, HBM {p.hbm_total / 1e9:.0f} GB  {p.description}")
    print("models:")
    for name, m in load_models().items():
        print(f"  {name:14s} {param_count(m) / 1e9:7.2f} B parameters  ({m.source.split(';')[0]})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rdusim", description=__doc__)
    parser.add_argument("--version", action="version", version=f"rdusim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="list known platforms and models").set_defaults(func=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rdusim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except RdusimError as err:
        print(f"rdusim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
