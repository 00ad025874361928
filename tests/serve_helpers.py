"""Helpers for the `gpgan serve` tests: start the real command on a free port of
127.0.0.1, stop it, and talk to it with the standard library (no HTTP client package).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120  # imports on a loaded 2-core machine


class Server:
    """``gpgan serve --port 0 ARGS`` started in ``cwd`` (a subprocess of this Python)."""

    def __init__(self, cwd: Path, *args: str):
        self.log = Path(cwd) / f"serve-{uuid.uuid4().hex[:6]}.log"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gpgan.cli", "serve", "--port", "0", *args],
                cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self._first_line()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            self.stop()
            raise RuntimeError(f"gpgan serve did not start: {line!r}\n{self.log.read_text()}")
        self.url = match.group(0)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the address is printed just before uvicorn starts answering
            try:
                self.get("api/config")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"gpgan serve does not answer:\n{self.log.read_text()}")
                time.sleep(0.2)

    def _first_line(self) -> str:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=START_TIMEOUT_S):
            return "(nothing printed)"
        return self.proc.stdout.readline()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def get(self, path: str) -> tuple[int, bytes]:
        return _send(urllib.request.Request(self.url + path))

    def post(self, path: str, fields: dict[str, str] | None = None,
             files: dict[str, tuple[str, bytes]] | None = None, *,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """POST multipart/form-data: ``fields`` name -> text, ``files`` name ->
        (filename, bytes)."""
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (fields or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                         f"\r\n\r\n{value}\r\n".encode())
        for name, (filename, data) in (files or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                         f'filename="{filename}"\r\nContent-Type: application/octet-stream'
                         f"\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        req = urllib.request.Request(
            self.url + path, data=body, method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                     **(headers or {})})
        return _send(req)

    def post_json(self, *args, **kwargs) -> tuple[int, dict]:
        status, body = self.post(*args, **kwargs)
        return status, json.loads(body)


def _send(req) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
