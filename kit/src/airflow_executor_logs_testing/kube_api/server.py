"""The HTTP side of the fake Kubernetes API: routes, the request handler and the threaded server."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

from airflow_executor_logs_testing.kube_api.admin import ADMIN_PREFIX, dispatch
from airflow_executor_logs_testing.kube_api.faults import Fault, RecordedRequest, status_body
from airflow_executor_logs_testing.kube_api.pods import LogRefusal, log_body
from airflow_executor_logs_testing.kube_api.rbac import forbidden_body
from airflow_executor_logs_testing.kube_api.routes import METHODS, PERMISSIONS, VERSION, resolve
from airflow_executor_logs_testing.kube_api.selectors import LabelSelectorError, parse_label_selector

if TYPE_CHECKING:
    from airflow_executor_logs_testing.kube_api.rbac import AccessRules
    from airflow_executor_logs_testing.kube_api.selectors import Selector

__all__ = ["LoopbackServer", "ServedState"]


class ServedState(Protocol):
    """What the HTTP server asks of the state it serves (:class:`~.api.FakeKubeAPI` is the one implementation)."""

    _stopping: threading.Event
    rbac: AccessRules

    def _pod_list(self, namespace: str | None, selector: Selector) -> dict[str, Any]: ...
    def _pod_json(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def _pod_logs(self, namespace: str, name: str) -> dict[str, list[str]] | None: ...
    def _take_fault(self, route: str) -> Fault | None: ...
    def _hold(self) -> bool: ...
    def _record(self, method: str, path: str, query: dict[str, str], route: str) -> RecordedRequest: ...
    def _set_status(self, record: RecordedRequest, code: int) -> None: ...
    def _count_connection(self) -> None: ...
    def _authorized(self, header: str | None) -> bool: ...


_CHUNK = 64 * 1024
_MALFORMED = b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":'


class _Abort(Exception):
    """The connection was dropped on purpose; stop handling the request."""


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that tracks its open connections so stop() can drop them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake: ServedState, port: int) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), a reverse DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def open_count(self) -> int:
        """Connections open right now."""
        with self._open_lock:
            return len(self._open)

    def close_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped connections are expected (faults, stop()); real handler bugs still print a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (OSError, _Abort)) or self.fake._stopping.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: no delayed-ACK stalls on keep-alive responses
    server: LoopbackServer

    def setup(self) -> None:
        super().setup()
        self._counted = False
        self._record: RecordedRequest | None = None
        self._fault: Fault | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def send_response(self, code: int, message: str | None = None) -> None:
        if self._record is not None:
            self.server.fake._set_status(self._record, code)
        super().send_response(code, message)

    def do_GET(self) -> None:
        try:
            self._dispatch()
        except (_Abort, OSError):
            self.close_connection = True
        finally:
            self._record, self._fault = None, None

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    # -- request flow -----------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        fake = self.server.fake
        self._record, self._fault = None, None
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body = self._read_body()
        if parts.path.startswith(ADMIN_PREFIX):
            self._admin(parts.path.removeprefix(ADMIN_PREFIX), body)
            return
        route, params = resolve(parts.path)
        if not self._counted:
            self._counted = True
            fake._count_connection()
        self._record = fake._record(self.command, parts.path, query, route)
        if not fake._authorized(self.headers.get("Authorization")):
            self._send_status(401, "Unauthorized")
            return
        if route == "other":
            self._send_status(404, "the server could not find the requested resource")
            return
        if self.command != METHODS.get(route, "GET"):
            self._send_status(405, "the server does not allow this method on the requested resource")
            return
        fault = fake._take_fault(route)
        if fault is not None and not self._apply_fault(fault):
            return
        if route in PERMISSIONS and not self._permitted(route, params):
            return
        if route == "version":
            self._send_json(200, VERSION)
        elif route == "review":
            self._send_json(*self.server.fake.rbac.review(body))
        elif route == "list":
            self._list(params.get("namespace"), query)
        elif route == "get":
            self._get(params["namespace"], params["name"])
        else:
            self._log(params["namespace"], params["name"], query)

    def _apply_fault(self, fault: Fault) -> bool:
        """Act out ``fault``; return whether the normal response should still be sent."""
        stopping = self.server.fake._stopping
        if fault.kind == "delay":
            if stopping.wait(fault.seconds):
                self._abort()
            return True
        if fault.kind == "hang":
            if self.server.fake._hold():
                return True  # healed: answered as if nothing had happened
            self._abort()
        if fault.kind == "status":
            self._send_status(fault.code, fault.message)
            return False
        if fault.kind == "malformed_json":
            self._send(200, "application/json", [_MALFORMED], chunked=False)
            return False
        self._fault = fault  # drip / reset_mid_stream shape the body as it is written
        return True

    def _permitted(self, route: str, params: Mapping[str, str]) -> bool:
        """Whether RBAC lets this request through; if not, answer the real API's 403."""
        verb, resource = PERMISSIONS[route]
        namespace = params.get("namespace")
        if self.server.fake.rbac.allowed(verb, resource, namespace):
            return True
        name = params.get("name") if route != "list" else None
        self._send_json(403, forbidden_body(verb, resource, namespace, name))
        return False

    def _list(self, namespace: str | None, query: Mapping[str, str]) -> None:
        try:
            selector = parse_label_selector(query.get("labelSelector"))
        except LabelSelectorError as exc:
            self._send_status(400, str(exc))
            return
        self._send_json(200, self.server.fake._pod_list(namespace, selector))

    def _get(self, namespace: str, name: str) -> None:
        pod = self.server.fake._pod_json(namespace, name)
        if pod is None:
            self._send_status(404, f'pods "{name}" not found')
        else:
            self._send_json(200, pod)

    def _log(self, namespace: str, name: str, query: Mapping[str, str]) -> None:
        containers = self.server.fake._pod_logs(namespace, name)
        if containers is None:
            self._send_status(404, f'pods "{name}" not found')
            return
        body = log_body(name, containers, query)
        if isinstance(body, LogRefusal):
            self._send_status(400, body.message)
            return
        pieces = body.splitlines(keepends=True) if self._fault and self._fault.kind == "drip" else [body]
        self._send(200, "text/plain", pieces, chunked=True)

    def _admin(self, name: str, body: bytes) -> None:
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            self._send_status(403, "admin endpoints are loopback-only")
            return
        code, payload = dispatch(self.server.fake, self.command, name, body)
        self._send_json(code, payload)

    # -- responses --------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_status(self, code: int, message: str) -> None:
        self._send_json(code, status_body(code, message))

    def _send_json(self, code: int, payload: Any) -> None:
        self._send(code, "application/json", [json.dumps(payload, separators=(",", ":")).encode()], chunked=False)

    def _send(self, code: int, content_type: str, pieces: Sequence[bytes], *, chunked: bool) -> None:
        """Write status, headers and body; ``pieces`` are drip units, else re-split into 64 KiB chunks."""
        fault = self._fault
        drip = fault.seconds if fault is not None and fault.kind == "drip" else None
        budget = fault.after_bytes if fault is not None and fault.kind == "reset_mid_stream" else None
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(sum(len(p) for p in pieces)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if drip is None:
            data = b"".join(pieces)
            pieces = [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)] if chunked else [data]
        pieces = [p for p in pieces if p]
        sent = 0
        stopping = self.server.fake._stopping
        for index, piece in enumerate(pieces):
            if drip is not None and index > 0 and stopping.wait(drip):
                self._abort()
            if budget is not None and sent + len(piece) > budget:
                part = piece[: budget - sent]
                self.wfile.write(b"%x\r\n%s" % (len(piece), part) if chunked else part)
                self._abort()
            last = budget is None and index == len(pieces) - 1
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n%s" % (len(piece), piece, b"0\r\n\r\n" if last else b""))
            else:
                self.wfile.write(piece)
            sent += len(piece)
        if budget is not None:
            self._abort()
        if chunked and not pieces:
            self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0, then close) and stop handling."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()
        raise _Abort
