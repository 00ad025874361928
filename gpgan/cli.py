"""The ``gpgan`` console script.

A thin front door: every sub-command lives in :mod:`gpgan.commands` as a module with
``register(subparsers)`` that adds its parser and sets ``func``; the work itself is a
call into the package. Expected errors (:class:`gpgan.errors.GPGANError`) print one
line ``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from . import __version__
from .errors import GPGANError

# Sub-command modules under gpgan.commands, in help order.
COMMANDS = ("blend", "data", "train", "evaluate", "realism", "serve")

# Options whose value may start with "-": argparse takes "--offset -10,-20" for an
# option followed by another option ("expected one argument"); glued into
# "--offset=-10,-20", the form argparse accepts.
NEGATIVE_VALUE_OPTIONS = ("--offset",)


def _glue_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in NEGATIVE_VALUE_OPTIONS and re.match(r"-\d", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpgan", description="GP-GAN image blending.")
    parser.add_argument("--version", action="version", version=f"gpgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"gpgan.commands.{name}")
        except ModuleNotFoundError as exc:  # a command group not written yet
            if exc.name == f"gpgan.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_glue_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args) or 0)
    except GPGANError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
