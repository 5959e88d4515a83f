"""
Remote log stores on 127.0.0.1 for the remote-logging tests: one that answers every search with no hits,
one that accepts connections and never answers, and a closed port that refuses them; and one port that is each of
those in turn (``switchable_store``), for a process whose store address is fixed when Airflow is imported.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["SwitchableStore", "answering_store", "hanging_store", "refusing_port", "switchable_store"]

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


class SwitchableStore:
    """
    One port on 127.0.0.1 that refuses connections, then answers like ``answering_store`` or hangs like
    ``hanging_store``, as told (``become``).

    It starts refusing: its socket is bound, so the port stays ours, but not listening, so the kernel refuses every
    connection to it. A listening socket cannot stop listening, so refusing comes first or not at all.
    ``become`` closes every connection of the mode before: a client's kept-alive connection does not carry one
    mode's behaviour into the next.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self.mode = "refusing"
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None

    def become(self, mode: str) -> None:
        """Refuse (only before any other mode), answer or hang from now on."""
        if mode not in ("refusing", "answering", "hanging"):
            raise ValueError(f"no such store mode: {mode}")
        if mode == "refusing" and self._acceptor is not None:
            raise ValueError("a store that has listened cannot refuse again: refusing comes first")
        self._close_connections()
        self.mode = mode
        if mode != "refusing" and self._acceptor is None:
            self._socket.listen(64)
            self._acceptor = threading.Thread(target=self._accept, name="switchable-store", daemon=True)
            self._acceptor.start()

    def close(self) -> None:
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(5)
        self._socket.close()
        self._close_connections()

    def _close_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, address = self._socket.accept()
            except OSError:
                continue
            with self._lock:
                self._connections.append(connection)
            if self.mode == "answering":
                threading.Thread(target=self._answer, args=(connection, address), daemon=True).start()

    def _answer(self, connection: socket.socket, address: tuple[str, int]) -> None:
        """One request and its answer (HTTP/1.0: the connection closes after it), as ``answering_store`` serves it."""
        with contextlib.suppress(OSError):
            _Empty(connection, address, self)  # type: ignore[arg-type]  # the handler only keeps the server
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
        connection.close()


@contextlib.contextmanager
def switchable_store() -> Iterator[SwitchableStore]:
    """A ``SwitchableStore``, refusing until told otherwise; its socket and every connection closed on exit."""
    store = SwitchableStore()
    try:
        yield store
    finally:
        store.close()
