"""A worker's log server on 127.0.0.1 for tests: it checks core's signed requests as Airflow's does, or hangs."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

__all__ = ["LogServerDouble", "full_backlog_listener"]

AUDIENCE = "task-instance-logs"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""

    def do_GET(self) -> None:
        served = self.server.double
        served.requests += 1
        if served.hang:
            served.release.wait()
            return
        status = 404  # a valid request for a file this worker does not have
        try:
            claims = jwt.decode(
                self.headers.get("Authorization", ""), served.secret, algorithms=["HS512"], audience=AUDIENCE
            )
            if claims.get("filename") != self.path.removeprefix("/log/"):
                status = 403
        except jwt.PyJWTError:
            status = 403
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, double: LogServerDouble) -> None:
        self.double = double
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:  # no reverse DNS lookup
        socket.socket.bind(self.socket, self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])


class LogServerDouble:
    """Answers 404 to a request signed with ``secret`` (403 otherwise); with ``hang``, reads it and never answers."""

    def __init__(self, secret: str, *, hang: bool = False) -> None:
        self.secret = secret
        self.hang = hang
        self.requests = 0
        self.release = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> LogServerDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def full_backlog_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listener on 127.0.0.1 whose backlog is full, so a new connection hangs in connect; close all when done."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers: list[socket.socket] = []
    for _ in range(8):  # Linux queues backlog + 1; a few more make sure
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        fillers.append(filler)
    return listener, fillers
