"""CLI sub-commands; each module has ``register(subparsers)`` (see :mod:`gpgan.cli`)."""

from __future__ import annotations

import argparse


def pair(kind, what: str):
    """An argparse ``type`` parsing ``"A,B"`` into a tuple of two ``kind`` values;
    ``what`` names the expected form in the error (e.g. ``"Y,X integers"``)."""

    def parse(text: str) -> tuple:
        try:
            a, b = (kind(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        return a, b

    return parse
