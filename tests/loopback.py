"""A loopback HTTP receiver for webhook and WeChat tests: a real server on 127.0.0.1 that can be
stopped and started again on the same port, answering by a programmable rule."""

from __future__ import annotations

import contextlib
import errno
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# This suite's loopback ports (the helpers of the project share the machine by port ranges).
PORTS = range(8190, 8200)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256  # the worker sends a batch at once; the default backlog is 5


Rule = Callable[[Received], tuple[int, bytes]]


@dataclass
class Receiver:
    """Every request is recorded in ``requests``; ``rule`` decides the answer."""

    rule: Rule = lambda r: (200, b"ok")
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                got = Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                receiver.requests.append(got)
                status, body = receiver.rule(got)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            do_POST = _handle
            do_GET = _handle

        ports = [self.port] if self.port else list(PORTS)
        last: OSError | None = None
        for port in ports:
            try:
                self._server = _Server(("127.0.0.1", port), Handler)
                self.port = port
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                last = exc
        else:
            raise RuntimeError(f"no free loopback port in {PORTS}") from last
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
