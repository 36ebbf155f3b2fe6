"""The ``wsframe`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__
from .codec import SPEEDUPS_DISABLED_BY_ENV, speedups_enabled


def version_text() -> str:
    """Version, Python and which codec path is active."""
    if speedups_enabled():
        path = "compiled"
    else:
        path = "pure (WSFRAME_NO_EXTENSIONS is set)" if SPEEDUPS_DISABLED_BY_ENV else "pure"
    return (f"wsframe {__version__} (Python {sys.version.split()[0]})\n"
            f"speedups: {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsframe", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print version and codec path")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(version_text())
        return 0
    parser.print_help()
    return 2
