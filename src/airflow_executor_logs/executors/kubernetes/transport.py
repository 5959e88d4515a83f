"""
HTTP details of reading from the Kubernetes API under a deadline: timeouts per call, the streamed body
split into lines with the socket's timeout cut to what is left, and failures classified and described
without credentials.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

from airflow_executor_logs.executors.kubernetes.client import PodLogResponse
from airflow_executor_logs.executors.redaction import without_secrets
from airflow_executor_logs.executors.resilience.deadline import Deadline

__all__ = ["body", "describe", "is_timeout", "is_transport_failure", "line_batches_until"]

_CHUNK_SIZE = 64 * 1024


def body(response: PodLogResponse, deadline: Deadline) -> Iterator[list[bytes]]:
    """The body's lines, a batch per chunk; the connection is pooled again only after a full read, else dropped."""
    complete = False
    try:
        yield from line_batches_until(response, deadline)
        complete = True
    finally:
        if complete:
            response.release_conn()  # back to the pool for the next read
        else:
            response.close()  # an unfinished body leaves the connection unusable


def line_batches_until(response: PodLogResponse, deadline: Deadline) -> Iterator[list[bytes]]:
    """
    Split the streamed body into lines as urllib3 does (newline kept), a batch per chunk received,
    stopping at the deadline.

    Per-read socket timeouts cannot cap a stream that drips a line at a time, so before every read
    the socket's timeout is set to what is left of the deadline.
    """
    sock = _socket_of(response)
    chunks = _chunks(response)
    pending = b""
    while True:
        remaining = deadline.remaining()
        if sock is not None:
            sock.settimeout(remaining)
        chunk = next(chunks, None)
        if chunk is None:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if complete:
            yield [line + b"\n" for line in complete]
    if pending:
        yield [pending]


def _chunks(response: PodLogResponse) -> Iterator[bytes]:
    """The body as it arrives: chunk by chunk, or in reads that return what is there."""
    if response.chunked and response.supports_chunked_reads():
        yield from response.read_chunked(_CHUNK_SIZE, decode_content=True)
        return
    read = getattr(response, "read1", None) or response.read
    while data := read(_CHUNK_SIZE):
        yield data


def _socket_of(response: PodLogResponse) -> socket.socket | None:
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def is_timeout(err: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (TimeoutError, socket.timeout)) or "timed out" in str(current).lower():
            return True
        current = getattr(current, "reason", None) or current.__cause__ or current.__context__
        if not isinstance(current, BaseException):
            return False
    return False


def is_transport_failure(err: BaseException) -> bool:
    """A timeout, or a connection refused, reset or dropped: the API did not answer."""
    from urllib3.exceptions import NewConnectionError, ProtocolError

    transport = (TimeoutError, socket.timeout, ConnectionError, NewConnectionError, ProtocolError)
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, transport) or "timed out" in str(current).lower():
            return True
        current = getattr(current, "reason", None) or current.__cause__ or current.__context__
        if not isinstance(current, BaseException):
            return False
    return False


def describe(err: BaseException, api: object) -> str:
    """A one-line description of ``err`` with any credential of ``api`` removed."""
    from kubernetes.client.rest import ApiException

    if isinstance(err, ApiException):
        text = f"({err.status}) {err.reason}"
        detail = _status_message(err.body)
        if detail:
            text += f": {detail}"
    else:
        text = str(err)
    return _redact(text, api)


def _status_message(body: object) -> str | None:
    if not body:
        return None
    try:
        status = json.loads(body)  # type: ignore[arg-type]  # str or bytes; anything else is not a Status
    except (TypeError, ValueError):
        return None
    message = status.get("message") if isinstance(status, dict) else None
    return str(message) if message else None


def _redact(text: str, api: object) -> str:
    """``text`` without the credentials of ``api``'s configuration (patterns: :func:`~.redaction.redact`)."""
    configuration = getattr(getattr(api, "api_client", None), "configuration", None)
    secrets: list[str] = []
    if configuration is not None:
        for value in (getattr(configuration, "api_key", None) or {}).values():
            if value:
                secrets.extend([str(value), str(value).removeprefix("Bearer ").strip()])
        for attribute in ("password", "cert_file", "key_file"):
            value = getattr(configuration, attribute, None)
            if value:
                secrets.append(str(value))
    return without_secrets(text, secrets)
