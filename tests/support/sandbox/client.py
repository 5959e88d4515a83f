"""The HTTP side of a sandbox api-server: a JWT, and task-log requests that record the worker serving them."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from tests.support.sandbox.home import SandboxError, SandboxLayout

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class LogResponse:
    """Result of one task-log request."""

    status_code: int
    text: str
    worker_pid: int | None
    elapsed: float


def task_log_path(dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
    """URL path of a task instance's log for ``try_number`` (Airflow's public API v2)."""
    return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"


class LogClient:
    """
    Task-log requests against a sandbox api-server (mixed into ``ApiServer``).

    The simple auth manager makes every user an admin, so one token from ``GET /auth/token`` serves all.
    """

    sandbox: SandboxLayout
    request_timeout: float
    _token: str | None

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def serving_pid(self, client_port: int) -> int | None:
        """PID of the worker holding the server side of the connection from ``client_port``."""
        raise NotImplementedError

    def token(self, refresh: bool = False) -> str:
        """A JWT from ``GET /auth/token``."""
        if self._token is None or refresh:
            r = httpx.get(f"{self.base_url}/auth/token", timeout=self.request_timeout)
            if r.status_code not in (200, 201):
                raise SandboxError(f"GET /auth/token -> {r.status_code}: {r.text[:500]}")
            self._token = str(r.json()["access_token"])
        return self._token

    def request_headers(self, *, ndjson: bool = False) -> dict[str, str]:
        """Headers of a task-log request: the bearer token and the wanted response format."""
        return {
            "Authorization": f"Bearer {self.token()}",
            "Accept": "application/x-ndjson" if ndjson else "application/json",
        }

    def task_log_path(self, try_number: int = 1, *, run_id: str | None = None) -> str:
        """URL path of a seeded task instance's log for ``try_number`` (``run_id``: default the main run)."""
        sb = self.sandbox
        return task_log_path(sb.dag_id, sb.run_id if run_id is None else run_id, sb.task_id, try_number)

    def fetch_task_log(
        self,
        try_number: int = 1,
        *,
        ndjson: bool = False,
        params: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> LogResponse:
        """Request the log of ``run_id`` (default: the main run) on a fresh connection; record the serving worker."""
        headers = self.request_headers(ndjson=ndjson)
        started = time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=self.request_timeout) as client:
            r = client.get(self.task_log_path(try_number, run_id=run_id), headers=headers, params=dict(params or {}))
            elapsed = time.monotonic() - started
            worker_pid = None
            stream = r.extensions.get("network_stream")
            if stream is not None:  # connection is still open: find who holds its server side
                with contextlib.suppress(Exception):
                    worker_pid = self.serving_pid(int(stream.get_extra_info("client_addr")[1]))
        return LogResponse(status_code=r.status_code, text=r.text, worker_pid=worker_pid, elapsed=elapsed)

    def get_task_log(self, try_number: int = 1, ndjson: bool = False) -> tuple[int, str]:
        """``GET .../taskInstances/{task}/logs/{try_number}`` as ``(status_code, text)``."""
        r = self.fetch_task_log(try_number, ndjson=ndjson)
        return r.status_code, r.text
