"""Helpers for the data tests: a real HTTP server with Range support, tar builders."""

from __future__ import annotations

import io
import re
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ArchiveServer:
    """Serve ``payload`` at ``/archive.tar`` on 127.0.0.1 (a thread).

    Knobs (set between requests):
      ``cut_after``: bytes of body to send before dropping the connection, for the
          next ``cuts`` requests (the response still announces the full length);
      ``honour_range``: answer ``Range`` with 206 (True) or ignore it with 200;
      ``count_delay``: sleep between writing a body and counting it (a slow handler).
    ``requests`` logs ``(path, Range header or None)`` of every request.
    """

    def __init__(self, payload: bytes):
        self.payload = payload
        self.cut_after: int | None = None
        self.cuts = 0
        self.honour_range = True
        self.count_delay = 0.0  # seconds between writing a body and counting it
        self.requests: list[tuple[str, str | None]] = []
        self._sent = 0
        self._active = 0  # requests whose handler has not returned yet
        self._idle = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                with owner._idle:
                    owner._active += 1
                try:
                    self._get()
                finally:
                    with owner._idle:
                        owner._active -= 1
                        owner._idle.notify_all()

            def _get(self):
                rng = self.headers.get("Range")
                owner.requests.append((self.path, rng))
                if self.path != "/archive.tar":
                    self.send_error(404, "Not Found")
                    return
                data, start, status = owner.payload, 0, 200
                total = len(data)
                if rng and owner.honour_range:
                    m = re.fullmatch(r"bytes=(\d+)-", rng)
                    start = int(m.group(1))
                    if start >= total:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{total}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                self.end_headers()
                if owner.cut_after is not None and owner.cuts > 0:
                    owner.cuts -= 1
                    part = body[: owner.cut_after]
                    self.wfile.write(part)
                    owner._count(len(part))
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)
                self.wfile.flush()
                time.sleep(owner.count_delay)
                owner._count(len(body))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def _count(self, n: int) -> None:
        with self._idle:
            self._sent += n

    @property
    def bytes_sent(self) -> int:
        """Body bytes written so far, read once every request's handler has returned.

        The client can hold the whole body before the handler thread counts it, so a
        plain counter read right after a download may lag behind (a flaky assertion).
        """
        with self._idle:
            if not self._idle.wait_for(lambda: self._active == 0, timeout=10):
                raise TimeoutError("a request handler did not finish within 10 s")
            return self._sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.tar"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def make_tar(members: list[tuple], mode: str = "w") -> bytes:
    """Build a tar in memory. ``members``: ``("file", name, bytes)``,
    ``("dir", name)``, ``("symlink", name, target)``, ``("hardlink", name, target)``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for kind, name, *rest in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = rest[0]
                info.size = len(data)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
            tf.addfile(info)
    return buf.getvalue()


def tree(root) -> set[str]:
    """All paths (files, dirs, links) under ``root``, relative, ``/``-separated."""
    from pathlib import Path

    root = Path(root)
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}
