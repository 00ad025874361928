"""Where the package's diagnostics go.

:func:`to_stderr` (the CLI) sends the ``gpgan`` loggers to the current ``sys.stderr``;
:func:`to_file` (the workflow scripts' first line) points ``sys.stderr`` (tqdm progress bars, warnings, tracebacks) and the
:mod:`logging` root handler at one file, so each Snakemake rule's ``log:`` holds
everything its step said.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def to_file(path, level: int = logging.INFO):
    """Redirect stderr and logging to ``path`` (created, truncated); returns the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "w", buffering=1)
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=level, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return stream


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted.

    A handler bound to the stream current at install time keeps writing to it after it
    is replaced and closed (a test's captured stderr, a script's log file): "Logging
    error ... I/O operation on closed file".
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; ignored
        pass


def to_stderr(quiet: bool = False) -> None:
    """Send ``gpgan.*`` log records (INFO, or WARNING if ``quiet``) to ``sys.stderr``.

    Idempotent: one handler, installed once, that follows ``sys.stderr``.
    """
    root = logging.getLogger("gpgan")
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
