"""Task-log requests (``sandbox.client``): the URL, the token, the headers, the serving worker.

Against a stdlib HTTP server on 127.0.0.1 that records what it was asked, not an api-server.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.sandbox import SandboxError, task_log_path
from tests.support.sandbox.client import LogClient, LogResponse


@dataclass
class Seen:
    """What the stand-in server was asked: ``(path, headers, client port)`` per request."""

    requests: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    token_status: int = 200


class StandIn(http.server.ThreadingHTTPServer):
    seen: Seen


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn and gunicorn answer: the connection is open when asked
    server: StandIn

    def do_GET(self) -> None:
        seen = self.server.seen
        seen.requests.append((self.path, dict(self.headers), self.client_address[1]))
        if self.path == "/auth/token":
            body = {"access_token": f"jwt-{len(seen.requests)}"} if seen.token_status < 300 else {"detail": "no"}
            self._answer(seen.token_status, json.dumps(body))
        else:
            self._answer(200, f"log of {self.path}")

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn(("127.0.0.1", 0), Handler)
    server.seen = Seen()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Client(LogClient):
    """A ``LogClient`` for the stand-in; says the serving worker is ``10_000 + the client port``."""

    def __init__(self, server: StandIn) -> None:
        self.sandbox = SimpleNamespace(dag_id="d", run_id="main", task_id="t")  # type: ignore[assignment]
        self.request_timeout = 5.0
        self._token = None
        self._port = server.server_address[1]
        self.asked_ports: list[int] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def serving_pid(self, client_port: int) -> int | None:
        self.asked_ports.append(client_port)
        return 10_000 + client_port


def test_task_log_path_is_the_public_api_v2_path() -> None:
    assert task_log_path("d", "r", "t") == "/api/v2/dags/d/dagRuns/r/taskInstances/t/logs/1"
    assert task_log_path("d", "r", "t", 3) == "/api/v2/dags/d/dagRuns/r/taskInstances/t/logs/3"


def test_the_token_is_fetched_once_until_refreshed(stand_in: StandIn) -> None:
    client = Client(stand_in)
    assert (client.token(), client.token(), client.token(refresh=True)) == ("jwt-1", "jwt-1", "jwt-2")
    assert [path for path, _, _ in stand_in.seen.requests] == ["/auth/token", "/auth/token"]


def test_a_refused_token_is_a_sandbox_error(stand_in: StandIn) -> None:
    stand_in.seen.token_status = 403
    with pytest.raises(SandboxError, match=r'GET /auth/token -> 403: \{"detail": "no"\}'):
        Client(stand_in).token()


def test_request_headers_carry_the_token_and_the_wanted_format(stand_in: StandIn) -> None:
    client = Client(stand_in)
    assert client.request_headers() == {"Authorization": "Bearer jwt-1", "Accept": "application/json"}
    assert client.request_headers(ndjson=True)["Accept"] == "application/x-ndjson"


def test_fetch_task_log_asks_for_the_run_and_records_the_worker_of_its_connection(stand_in: StandIn) -> None:
    client = Client(stand_in)
    response = client.fetch_task_log(2, ndjson=True, params={"full_content": "true"}, run_id="other")
    path, headers, client_port = stand_in.seen.requests[-1]
    assert path == "/api/v2/dags/d/dagRuns/other/taskInstances/t/logs/2?full_content=true"
    assert (headers["Authorization"], headers["Accept"]) == ("Bearer jwt-1", "application/x-ndjson")
    assert client.asked_ports == [client_port]  # the port of the connection that carried the request
    assert response == LogResponse(200, f"log of {path}", 10_000 + client_port, response.elapsed)
    assert 0 < response.elapsed < 5


def test_get_task_log_reads_the_main_run(stand_in: StandIn) -> None:
    client = Client(stand_in)
    assert client.get_task_log() == (200, "log of /api/v2/dags/d/dagRuns/main/taskInstances/t/logs/1")
    assert client.task_log_path(4) == "/api/v2/dags/d/dagRuns/main/taskInstances/t/logs/4"


def test_the_base_class_leaves_the_server_side_to_the_server() -> None:
    with pytest.raises(NotImplementedError):
        _ = LogClient().base_url
    with pytest.raises(NotImplementedError):
        LogClient().serving_pid(1)
