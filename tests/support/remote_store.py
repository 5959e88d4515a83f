"""
Remote log stores on 127.0.0.1 for the remote-logging tests: one that answers every search with no hits,
one that accepts connections and never answers, and a closed port that refuses them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["answering_store", "hanging_store", "refusing_port"]

#: What both clients accept from a search or count that found nothing (Elasticsearch checks its product header).
_EMPTY = json.dumps(
    {
        "took": 1,
        "timed_out": False,
        "count": 0,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []},
    }
).encode()


class _Empty(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(_EMPTY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(_EMPTY)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def answering_store() -> Iterator[int]:
    """A store whose every search and count finds nothing; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Empty)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="answering-store", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def hanging_store() -> Iterator[int]:
    """A listener that accepts every connection and never answers; yields its port. All closed on exit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)

    thread = threading.Thread(target=accept, name="hanging-store", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


def refusing_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
