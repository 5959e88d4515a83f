"""
The remote-store check: the remote log store a running task's log is read from (Elasticsearch, OpenSearch: a
``REMOTE_TASK_LOG`` with a ``host``) accepts a connection and answers a request, each within ``connect_timeout``.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

from airflow_executor_logs.cli.doctor.check.results import FAIL, OK, CheckResult
from airflow_executor_logs.config import SECTION

__all__ = ["check_remote_store", "store_address"]


def store_address(remote: Any) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of ``remote``'s first host, or ``None`` when it has none (S3, GCS, ...)."""
    host = getattr(remote, "host", None)
    if not isinstance(host, str) or not host.strip():
        return None
    first = host.split(",")[0].strip()
    url = urlsplit(first if "://" in first else f"http://{first}")
    if not url.hostname:
        return None
    port = getattr(remote, "port", None)
    return url.scheme or "http", url.hostname, url.port or (port if isinstance(port, int) else 9200)


def _probe(scheme: str, host: str, port: int, seconds: float) -> None:
    """Connect, send a ``HEAD /`` and wait for the first byte of an answer, each step within ``seconds``."""
    with socket.create_connection((host, port), timeout=seconds) as raw:
        sock: socket.socket = raw
        if scheme == "https":  # liveness only: who the store is, is the client's business
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(raw, server_hostname=host)
        sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        if not sock.recv(1):
            raise ConnectionError("closed the connection without answering")


def check_remote_store(remote: Any, connect_timeout: float) -> CheckResult | None:
    """The store's answer to one request; ``None`` when there is no store with a host to ask."""
    address = store_address(remote)
    if address is None:
        return None
    scheme, host, port = address
    name = type(remote).__name__
    details: dict[str, Any] = {"remote_task_log": name, "host": host, "port": port}
    try:
        _probe(scheme, host, port, connect_timeout)
    except TimeoutError:
        summary = f"{name} at {host}:{port} does not answer within {connect_timeout:g} s ([{SECTION}] connect_timeout)"
    except OSError as err:
        summary = f"{name} at {host}:{port} cannot be reached: {type(err).__name__}: {err}"
    else:
        return CheckResult("remote-store", name, OK, f"{name} at {host}:{port} answers", None, details)
    fix = (
        f"make {host}:{port} reachable from the API server; meanwhile a running task's log shows a warning line "
        f"after [{SECTION}] remote_read_timeout and the task's own lines"
    )
    return CheckResult("remote-store", name, FAIL, summary, fix, details)
