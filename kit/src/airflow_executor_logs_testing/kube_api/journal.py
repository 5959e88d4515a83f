"""What the fake Kubernetes API was asked: every API request, and the connections that carried them."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from airflow_executor_logs_testing.kube_api.faults import RecordedRequest

__all__ = ["RequestJournal"]


class RequestJournal:
    """The API requests received (admin requests excluded), oldest first, and the connections counted. Thread-safe."""

    def __init__(self) -> None:
        self._journal_lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._connections = 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copies of the API requests received so far, oldest first (admin requests excluded)."""
        return self.recorded_requests()

    def recorded_requests(self) -> list[RecordedRequest]:
        """Copies of the API requests received so far, oldest first (admin requests excluded)."""
        with self._journal_lock:
            return [replace(r, query=dict(r.query)) for r in self._requests]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._journal_lock:
            self._requests.clear()

    @property
    def connections_opened(self) -> int:
        """TCP connections that carried at least one API (non-admin) request."""
        with self._journal_lock:
            return self._connections

    def _record(self, method: str, path: str, query: dict[str, str], route: str) -> RecordedRequest:
        record = RecordedRequest(method=method, path=path, query=query, route=route, timestamp=time.time())
        with self._journal_lock:
            self._requests.append(record)
        return record

    def _set_status(self, record: RecordedRequest, code: int) -> None:
        with self._journal_lock:
            record.status = code

    def _count_connection(self) -> None:
        with self._journal_lock:
            self._connections += 1
