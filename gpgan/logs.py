"""Send a step's diagnostics to a log file (the workflow scripts' first line).

:func:`to_file` points ``sys.stderr`` (tqdm progress bars, warnings, tracebacks) and the
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
