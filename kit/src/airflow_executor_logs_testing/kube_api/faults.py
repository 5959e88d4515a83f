"""What the loopback API can be made to do wrong (:class:`Fault`), what it records, and its error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, Literal

__all__ = ["ROUTES", "Fault", "FaultKind", "RecordedRequest", "Route", "status_body"]

FaultKind = Literal["delay", "drip", "hang", "status", "malformed_json", "reset_mid_stream"]
Route = Literal["list", "get", "log", "version", "review", "*"]
#: The routes a fault can be injected into ("*": all of them); ``review`` is a ``SelfSubjectAccessReview``.
ROUTES: frozenset[str] = frozenset({"list", "get", "log", "version", "review", "*"})


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
        """Read the request and answer only once healed (``FakeKubeAPI.heal``); dropped when the server stops."""
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


def status_body(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """A Kubernetes ``Status`` failure body, as the real API server sends with an error code."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _reason(code),
        "code": code,
    }
