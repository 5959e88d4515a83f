"""A small, real Kubernetes API server for tests, driven by the real ``kubernetes`` client.

:class:`FakeKubeAPI` serves the handful of core/v1 pod routes that log readers use (list pods with a
label selector, read one pod, read a pod's log) over plain HTTP/1.1 on 127.0.0.1, checks a bearer token,
records every request and can inject faults (delays, slow streams, hangs, error statuses, broken JSON,
connection resets). Run ``python -m airflow_executor_logs.testing.kube_api --kubeconfig PATH`` to serve
it from its own process (see :class:`~airflow_executor_logs.testing.kube_process.FakeKubeProcess`).
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from types import FrameType

__all__ = [
    "FakeKubeAPI",
    "Fault",
    "FaultKind",
    "LabelSelectorError",
    "RecordedRequest",
    "Requirement",
    "Route",
    "Selector",
    "main",
    "parse_label_selector",
]

# ---------------------------------------------------------------------------------------------------------
# Label selectors
# ---------------------------------------------------------------------------------------------------------

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_KEY_RE = re.compile(rf"(?:(?P<prefix>{_DNS_LABEL}(?:\.{_DNS_LABEL})*)/)?(?P<name>{_NAME})")
_VALUE_RE = re.compile(rf"(?:{_NAME})?")
_TOKEN_RE = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,)|(?P<word>[A-Za-z0-9_./-]+))")

_Token = tuple[Literal["op", "word"], str]


class LabelSelectorError(ValueError):
    """A label selector string that cannot be parsed."""


@dataclass(frozen=True)
class Requirement:
    """One requirement of a label selector, e.g. ``app in (a,b)``."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # "!=" and "notin"


@dataclass(frozen=True)
class Selector:
    """A parsed label selector: the AND of its requirements (empty matches everything)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        actual = labels or {}
        return all(requirement.matches(actual) for requirement in self.requirements)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            bad = text[pos:].lstrip()[0]
            raise LabelSelectorError(f"unable to parse requirement: unexpected character {bad!r} in {text!r}")
        op = match.group("op")
        tokens.append(("op", op) if op is not None else ("word", match.group("word")))
        pos = match.end()
    return tokens


class _SelectorParser:
    """Recursive-descent parser for the Kubernetes label selector grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def fail(self, why: str) -> LabelSelectorError:
        return LabelSelectorError(f"unable to parse requirement: {why} in {self.text!r}")

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end of selector")
        self.pos += 1
        return token

    def parse(self) -> Selector:
        if not self.tokens:
            return Selector()
        requirements = [self.requirement()]
        while self.peek() is not None:
            if self.take() != ("op", ","):
                raise self.fail("expected ','")
            requirements.append(self.requirement())
        return Selector(tuple(requirements))

    def requirement(self) -> Requirement:
        if self.peek() == ("op", "!"):
            self.pos += 1
            return Requirement(self.key(), "!")
        key = self.key()
        following = self.peek()
        if following is None or following == ("op", ","):
            return Requirement(key, "exists")
        kind, text = self.take()
        if kind == "op" and text in ("=", "==", "!="):
            return Requirement(key, "!=" if text == "!=" else "=", frozenset({self.optional_value()}))
        if kind == "word" and text == "in":
            return Requirement(key, "in", self.value_set())
        if kind == "word" and text == "notin":
            return Requirement(key, "notin", self.value_set())
        raise self.fail(f"unexpected {text!r} after key {key!r}")

    def key(self) -> str:
        kind, text = self.take()
        match = _KEY_RE.fullmatch(text) if kind == "word" else None
        if match is None or len(match.group("name")) > 63 or len(match.group("prefix") or "") > 253:
            raise self.fail(f"invalid label key {text!r}")
        return text

    def value(self, text: str) -> str:
        if len(text) > 63 or _VALUE_RE.fullmatch(text) is None:
            raise self.fail(f"invalid label value {text!r}")
        return text

    def optional_value(self) -> str:
        token = self.peek()
        if token is None or token == ("op", ","):
            return ""
        kind, text = self.take()
        if kind != "word":
            raise self.fail(f"expected a value, found {text!r}")
        return self.value(text)

    def value_set(self) -> frozenset[str]:
        if self.take() != ("op", "("):
            raise self.fail("expected '('")
        values: set[str] = set()
        while True:
            kind, text = self.take()
            if kind != "word":
                raise self.fail(f"expected a value, found {text!r}")
            values.add(self.value(text))
            separator = self.take()
            if separator == ("op", ")"):
                return frozenset(values)
            if separator != ("op", ","):
                raise self.fail(f"expected ',' or ')', found {separator[1]!r}")


def parse_label_selector(text: str | None) -> Selector:
    """Parse a Kubernetes label selector (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
    ``k notin (a,b)``, comma-separated). Raises :class:`LabelSelectorError` when malformed."""
    return _SelectorParser(text or "").parse()


# ---------------------------------------------------------------------------------------------------------
# Faults and recorded requests
# ---------------------------------------------------------------------------------------------------------

FaultKind = Literal["delay", "drip", "hang", "status", "malformed_json", "reset_mid_stream"]
Route = Literal["list", "get", "log", "*"]
_ROUTES: frozenset[str] = frozenset({"list", "get", "log", "*"})


@dataclass(frozen=True)
class Fault:
    """A misbehaviour to inject into a route; build one with the classmethods."""

    kind: FaultKind
    seconds: float = 0.0
    code: int = 0
    message: str = ""
    after_bytes: int = 0

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before answering normally."""
        return cls("delay", seconds=float(seconds))

    @classmethod
    def drip(cls, seconds_between_chunks: float) -> Fault:
        """Send the body one line per chunk (logs), sleeping between chunks."""
        return cls("drip", seconds=float(seconds_between_chunks))

    @classmethod
    def hang(cls) -> Fault:
        """Read the request and never answer (until the server stops)."""
        return cls("hang")

    @classmethod
    def status(cls, code: int, message: str = "") -> Fault:
        """Answer with HTTP ``code`` and a Kubernetes Status body."""
        return cls("status", code=int(code), message=message or _reason(int(code)))

    @classmethod
    def malformed_json(cls) -> Fault:
        """Answer 200 with a truncated JSON body."""
        return cls("malformed_json")

    @classmethod
    def reset_mid_stream(cls, after_bytes: int = 0) -> Fault:
        """Send headers and ``after_bytes`` bytes of the body, then reset the connection (RST)."""
        return cls("reset_mid_stream", after_bytes=int(after_bytes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, accepted by :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from ``{"kind": ..., params...}`` (the admin endpoint's format)."""
        kind = data.get("kind")
        if kind == "delay":
            return cls.delay(data["seconds"])
        if kind == "drip":
            return cls.drip(data["seconds"])
        if kind == "hang":
            return cls.hang()
        if kind == "status":
            return cls.status(data["code"], data.get("message", ""))
        if kind == "malformed_json":
            return cls.malformed_json()
        if kind == "reset_mid_stream":
            return cls.reset_mid_stream(data.get("after_bytes", 0))
        raise ValueError(f"unknown fault kind {kind!r}")


@dataclass
class RecordedRequest:
    """One request the fake API received (the Authorization header is never stored)."""

    method: str
    path: str
    query: dict[str, str]
    route: str
    timestamp: float
    status: int = 0
    """HTTP status sent, 0 while unanswered or when never answered (hang)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class _Injection:
    route: str
    fault: Fault
    remaining: int | None


@dataclass
class _Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    containers: dict[str, list[str]]
    phase: str
    resource_version: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_json(self, *, with_kind: bool) -> dict[str, Any]:
        pod: dict[str, Any] = {
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(self.labels),
                "uid": self.uid,
                "resourceVersion": self.resource_version,
                "creationTimestamp": self.created,
            },
            "spec": {"containers": [{"name": c, "image": f"fake.invalid/{c}:latest"} for c in self.containers]},
            "status": {"phase": self.phase},
        }
        return {"kind": "Pod", "apiVersion": "v1", **pod} if with_kind else pod


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _reason(code: int) -> str:
    if code in _REASONS:
        return _REASONS[code]
    try:
        return HTTPStatus(code).phrase.replace(" ", "")
    except ValueError:
        return "Unknown"


def _status_body(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _reason(code),
        "code": code,
    }


# ---------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------------

_CHUNK = 64 * 1024
_MALFORMED = b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":'
_ROUTE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("list", re.compile(r"/api/v1/pods")),
    ("list", re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods")),
    ("get", re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<name>[^/]+)")),
    ("log", re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<name>[^/]+)/log")),
)


def _resolve(path: str) -> tuple[str, dict[str, str]]:
    for route, pattern in _ROUTE_PATTERNS:
        match = pattern.fullmatch(path)
        if match is not None:
            return route, {k: unquote(v) for k, v in match.groupdict().items()}
    return "other", {}


class _Abort(Exception):
    """The connection was dropped on purpose; stop handling the request."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, fake: FakeKubeAPI, port: int) -> None:
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
    server: _Server

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
        if parts.path.startswith("/_fake/"):
            self._admin(parts.path, query, body)
            return
        route, params = _resolve(parts.path)
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
        if self.command != "GET":
            self._send_status(405, "the server does not allow this method on the requested resource")
            return
        fault = fake._take_fault(route)
        if fault is not None and not self._apply_fault(fault):
            return
        if route == "list":
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
            stopping.wait()
            self._abort()
        if fault.kind == "status":
            self._send_status(fault.code, fault.message)
            return False
        if fault.kind == "malformed_json":
            self._send(200, "application/json", [_MALFORMED], chunked=False)
            return False
        self._fault = fault  # drip / reset_mid_stream shape the body as it is written
        return True

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
        container = query.get("container") or None
        if container is None:
            if len(containers) != 1:
                choices = " ".join(containers)
                self._send_status(400, f"a container name must be specified for pod {name}, choose one of: [{choices}]")
                return
            container = next(iter(containers))
        if container not in containers:
            self._send_status(400, f"container {container} is not valid for pod {name}")
            return
        lines = containers[container]
        try:
            tail = int(query["tailLines"]) if query.get("tailLines") else None
            limit = int(query["limitBytes"]) if query.get("limitBytes") else None
        except ValueError:
            self._send_status(400, "tailLines and limitBytes must be integers")
            return
        if (tail is not None and tail < 0) or (limit is not None and limit < 1):
            self._send_status(400, "tailLines must be >= 0 and limitBytes must be >= 1")
            return
        if tail is not None:
            lines = lines[-tail:] if tail else []
        data = "".join(f"{line}\n" for line in lines).encode()
        if limit is not None:
            data = data[:limit]
        pieces = data.splitlines(keepends=True) if self._fault and self._fault.kind == "drip" else [data]
        self._send(200, "text/plain", pieces, chunked=True)

    # -- admin ------------------------------------------------------------------------------------------

    def _admin(self, path: str, query: Mapping[str, str], body: bytes) -> None:
        fake = self.server.fake
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            self._send_status(403, "admin endpoints are loopback-only")
            return
        try:
            payload: Any = json.loads(body) if body else {}
            key = (self.command, path)
            if key == ("POST", "/_fake/pods"):
                fake.add_pod(**payload)
                self._send_json(201, {"ok": True})
            elif key == ("DELETE", "/_fake/pods"):
                if "name" in query:
                    fake.remove_pod(query["name"], query.get("namespace", "default"))
                else:
                    fake.clear_pods()
                self._send_json(200, {"ok": True})
            elif key == ("POST", "/_fake/faults"):
                spec = dict(payload)
                route, times = spec.pop("route", "*"), spec.pop("times", None)
                fake.inject(route, Fault.from_dict(spec), times=times)
                self._send_json(201, {"ok": True})
            elif key == ("DELETE", "/_fake/faults"):
                fake.clear_faults()
                self._send_json(200, {"ok": True})
            elif key == ("GET", "/_fake/requests"):
                self._send_json(200, [r.to_dict() for r in fake.requests])
            elif key == ("DELETE", "/_fake/requests"):
                fake.clear_requests()
                self._send_json(200, {"ok": True})
            elif key == ("GET", "/_fake/stats"):
                self._send_json(200, fake.stats())
            elif key == ("POST", "/_fake/token"):
                fake.set_token(payload["token"])
                if payload.get("rewrite_kubeconfig"):
                    fake._rewrite_kubeconfig()
                self._send_json(200, {"ok": True})
            else:
                self._send_status(404, f"no admin endpoint {self.command} {path}")
        except KeyError as exc:
            self._send_status(404 if self.command == "DELETE" else 400, f"missing or unknown: {exc}")
        except (TypeError, ValueError) as exc:
            self._send_status(400, str(exc))

    # -- responses --------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_status(self, code: int, message: str) -> None:
        self._send_json(code, _status_body(code, message))

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


# ---------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------


class FakeKubeAPI:
    """A real HTTP Kubernetes API server (pods, pod logs) on 127.0.0.1 for tests.

    Use as a context manager or call :meth:`start` / :meth:`stop`. All state is thread-safe.
    """

    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._token = token or secrets.token_urlsafe(24)
        self._requested_port = port
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._faults: list[_Injection] = []
        self._requests: list[RecordedRequest] = []
        self._connections = 0
        self._resource_version = 1
        self._kubeconfig: tuple[Path, dict[str, Any]] | None = None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeKubeAPI:
        """Bind an ephemeral port on 127.0.0.1 and serve from a daemon thread."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("a stopped FakeKubeAPI cannot be restarted")
            if self._server is not None:
                return self
            server = _Server(self, self._requested_port)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube-api", daemon=True
            )
            self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop every open connection (hung ones too) and join all threads. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server, thread = self._server, self._thread
        self._stopping.set()
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()  # joins handler threads
        thread.join()

    def __enter__(self) -> FakeKubeAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("FakeKubeAPI is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """The bearer token requests must carry."""
        with self._lock:
            return self._token

    def set_token(self, new: str) -> None:
        """Rotate the accepted bearer token; requests with the old one get 401."""
        if not new:
            raise ValueError("token must not be empty")
        with self._lock:
            self._token = new

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        extra_user_fields: Mapping[str, Any] | None = None,
        *,
        namespace: str = "default",
    ) -> Path:
        """Write a kubeconfig (server = :attr:`url`, bearer token, current context) and return its path."""
        target = Path(path)
        user = {"token": self.token, **(extra_user_fields or {})}
        quote = json.dumps  # a JSON scalar is a valid YAML flow scalar
        lines = [
            "apiVersion: v1",
            "kind: Config",
            "preferences: {}",
            "clusters:",
            "- name: fake-kube-api",
            "  cluster:",
            f"    server: {quote(self.url)}",
            "users:",
            "- name: fake-kube-user",
            "  user:",
            *(f"    {quote(str(k))}: {quote(v)}" for k, v in user.items()),
            "contexts:",
            "- name: fake-kube-api",
            "  context:",
            "    cluster: fake-kube-api",
            "    user: fake-kube-user",
            f"    namespace: {quote(namespace)}",
            "current-context: fake-kube-api",
        ]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            os.replace(tmp, target)  # atomic: a concurrent reader never sees half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self._kubeconfig = (
                target,
                {"extra_user_fields": dict(extra_user_fields or {}), "namespace": namespace},
            )
        return target

    def _rewrite_kubeconfig(self) -> None:
        with self._lock:
            previous = self._kubeconfig
        if previous is None:
            raise ValueError("no kubeconfig was written by this server")
        self.write_kubeconfig(previous[0], **previous[1])

    # -- pods -------------------------------------------------------------------------------------------

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        logs: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        phase: str = "Running",
    ) -> None:
        """Add (or replace) a pod. ``logs`` maps container -> lines; a plain list is container ``base``."""
        if isinstance(logs, str):
            raise TypeError("logs must be a list of lines or a mapping of container name to lines")
        containers: dict[str, list[str]]
        if logs is None:
            containers = {"base": []}
        elif isinstance(logs, Mapping):
            containers = {str(c): [str(line) for line in lines] for c, lines in logs.items()}
        else:
            containers = {"base": [str(line) for line in logs]}
        if not containers:
            raise ValueError("a pod needs at least one container")
        with self._lock:
            self._resource_version += 1
            self._pods[(namespace, name)] = _Pod(
                name=name,
                namespace=namespace,
                labels={str(k): str(v) for k, v in (labels or {}).items()},
                containers=containers,
                phase=phase,
                resource_version=str(self._resource_version),
            )

    def append_logs(
        self, name: str, lines: Sequence[str], *, namespace: str = "default", container: str = "base"
    ) -> None:
        """Append log lines to one container of an existing pod."""
        with self._lock:
            self._pods[(namespace, name)].containers[container].extend(str(line) for line in lines)

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        """Delete a pod; raises ``KeyError`` when it does not exist."""
        with self._lock:
            del self._pods[(namespace, name)]
            self._resource_version += 1

    def clear_pods(self) -> None:
        """Delete every pod."""
        with self._lock:
            self._pods.clear()
            self._resource_version += 1

    def _pod_list(self, namespace: str | None, selector: Selector) -> dict[str, Any]:
        with self._lock:
            items = [
                pod.to_json(with_kind=False)
                for (ns, _), pod in sorted(self._pods.items())
                if (namespace is None or ns == namespace) and selector.matches(pod.labels)
            ]
            version = str(self._resource_version)
        return {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _pod_json(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            pod = self._pods.get((namespace, name))
            return None if pod is None else pod.to_json(with_kind=True)

    def _pod_logs(self, namespace: str, name: str) -> dict[str, list[str]] | None:
        with self._lock:
            pod = self._pods.get((namespace, name))
            return None if pod is None else {c: list(lines) for c, lines in pod.containers.items()}

    # -- faults -----------------------------------------------------------------------------------------

    def inject(self, route: Route | str, fault: Fault, *, times: int | None = None) -> None:
        """Apply ``fault`` to requests on ``route`` ("list", "get", "log" or "*"), at most ``times`` times.

        Faults hit authenticated requests only; the oldest matching injection wins.
        """
        if route not in _ROUTES:
            raise ValueError(f"route must be one of {sorted(_ROUTES)}, not {route!r}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for every request)")
        with self._lock:
            self._faults.append(_Injection(route, fault, times))

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            for injection in self._faults:
                if injection.route in ("*", route):
                    if injection.remaining is not None:
                        injection.remaining -= 1
                        if injection.remaining == 0:
                            self._faults.remove(injection)
                    return injection.fault
        return None

    # -- requests and stats -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copies of the API requests received so far, oldest first (admin requests excluded)."""
        with self._lock:
            return [replace(r, query=dict(r.query)) for r in self._requests]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    @property
    def connections_opened(self) -> int:
        """TCP connections that carried at least one API (non-admin) request."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        """TCP connections open right now (kept alive by a client's pool, or mid-request)."""
        server = self._server
        if server is None:
            return 0
        with server._open_lock:
            return len(server._open)

    def stats(self) -> dict[str, int]:
        """``connections_opened``, ``requests`` and ``pods`` counters."""
        with self._lock:
            return {
                "connections_opened": self._connections,
                "requests": len(self._requests),
                "pods": len(self._pods),
            }

    def _record(self, method: str, path: str, query: dict[str, str], route: str) -> RecordedRequest:
        record = RecordedRequest(method=method, path=path, query=query, route=route, timestamp=time.time())
        with self._lock:
            self._requests.append(record)
        return record

    def _set_status(self, record: RecordedRequest, code: int) -> None:
        with self._lock:
            record.status = code

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def _authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.token}".encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)


# ---------------------------------------------------------------------------------------------------------
# Command line: serve from its own process
# ---------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a :class:`FakeKubeAPI` until SIGTERM/SIGINT; print ``{"url", "port", "pid"}`` once ready."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_executor_logs.testing.kube_api", description="Serve a fake Kubernetes API."
    )
    parser.add_argument("--kubeconfig", required=True, type=Path, help="kubeconfig file to write")
    parser.add_argument("--pods", type=Path, help="JSON file: a list of add_pod keyword arguments")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: ephemeral)")
    parser.add_argument("--token", help="bearer token (default: random)")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process dies")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    with FakeKubeAPI(token=args.token, port=args.port) as api:
        if args.pods is not None:
            for spec in json.loads(args.pods.read_text(encoding="utf-8")):
                api.add_pod(**spec)
        api.write_kubeconfig(args.kubeconfig)
        ready = {"url": api.url, "port": api.port, "pid": os.getpid(), "kubeconfig": str(args.kubeconfig)}
        print(json.dumps(ready), flush=True)
        while not stop.wait(0.2):
            if args.exit_with_parent and os.getppid() != parent:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
