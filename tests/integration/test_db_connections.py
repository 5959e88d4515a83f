"""
One log read holds one database connection: the log file name is rendered in the task instance's session.

Counted with SQLAlchemy pool events around one request to the real FastAPI log endpoint: stock core
checks out a second connection (``_render_filename`` opens its own session) while the endpoint's
session holds the first; through our handler the read never holds two at once, and the endpoint's
connection is given back before the executor read waits on Kubernetes. The same shape on
sqlite as on PostgreSQL: these are the pool's checkouts, not the database's.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from airflow_executor_logs.logging_config import LOGGING_CONFIG
from tests.integration.conftest import SeededCluster
from tests.support.kube import airflow_pointed_at


@dataclass
class Checkouts:
    """Pool checkouts seen, and the most connections held at once."""

    total: int = 0
    held: int = 0
    peak: int = 0


@contextlib.contextmanager
def counting_checkouts(engine: Any) -> Iterator[Checkouts]:
    """Count ``engine``'s pool checkouts and the peak of connections checked out at the same time."""
    from sqlalchemy import event

    counts = Checkouts()
    lock = threading.Lock()

    def checked_out(*_: Any) -> None:
        with lock:
            counts.total += 1
            counts.held += 1
            counts.peak = max(counts.peak, counts.held)

    def checked_in(*_: Any) -> None:
        with lock:
            counts.held -= 1

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
    try:
        yield counts
    finally:
        event.remove(engine, "checkout", checked_out)
        event.remove(engine, "checkin", checked_in)


@contextlib.contextmanager
def logging_config(config: dict[str, Any]) -> Iterator[None]:
    task_logger = logging.getLogger("airflow.task")
    saved = list(task_logger.handlers)
    logging.config.dictConfig(config)
    try:
        yield
    finally:
        task_logger.handlers[:] = saved


def _stop_stock_executors() -> None:
    from airflow.utils.log.file_task_handler import FileTaskHandler

    for executor in FileTaskHandler.executor_instances.values():
        manager = getattr(executor, "_manager", None)
        if manager is not None:
            manager.shutdown()
    FileTaskHandler.executor_instances.clear()


@contextlib.contextmanager
def held_at_executor_reads(counts_of: Any) -> Iterator[list[int]]:
    """Record how many connections are checked out each time the pipeline starts an executor read."""
    from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline

    held: list[int] = []
    originals = {name: getattr(ExecutorLogPipeline, name) for name in ("read", "read_streaming")}

    def recording(original: Any) -> Any:
        def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts = counts_of()
            if counts is not None:
                held.append(counts.held)
            return original(self, *args, **kwargs)

        return read

    with contextlib.ExitStack() as stack:
        for name, original in originals.items():
            stack.enter_context(mock.patch.object(ExecutorLogPipeline, name, recording(original)))
        yield held


def _one_read(cluster: SeededCluster, config: dict[str, Any], accept: str) -> Checkouts:
    """One log request through the real app; the pool counts of the request alone (token fetched before)."""
    from airflow import settings
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    current = _current_counts
    current.clear()
    url = f"/api/v2/dags/{cluster.dag_id}/dagRuns/{cluster.run_id}/taskInstances/{cluster.task_id}/logs/1"
    with logging_config(config), TestClient(create_app("core")) as client:
        try:
            headers = {"Authorization": f"Bearer {client.get('/auth/token').json()['access_token']}", "Accept": accept}
            client.get(url, headers=headers)  # warm: caches, the executor (stock), the Kubernetes client
            with counting_checkouts(settings.engine) as counts:
                current.append(counts)
                response = client.get(url, headers=headers)
        finally:
            _stop_stock_executors()
    assert response.status_code == 200, response.text
    assert "pod says line" in response.text
    return counts


#: The counts of the request being made (for the pipeline wrapper, which runs in the endpoint's thread).
_current_counts: list[Checkouts] = []


@pytest.fixture
def cluster(seeded_cluster: SeededCluster) -> Iterator[SeededCluster]:
    with airflow_pointed_at(seeded_cluster.kube, seeded_cluster.kubeconfig):
        yield seeded_cluster


def test_a_read_holds_one_connection_where_stock_holds_two(cluster: SeededCluster) -> None:
    from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

    stock = _one_read(cluster, DEFAULT_LOGGING_CONFIG, "application/json")
    ours = _one_read(cluster, LOGGING_CONFIG, "application/json")
    print(f"\n[db] stock {stock}, ours {ours}")
    assert stock.peak == 2, f"stock control: expected a second connection, saw {stock}"
    assert ours.peak == 1, f"our read held {ours.peak} connections at once ({ours})"
    assert ours.total == stock.total - 1


def test_a_streamed_read_after_the_endpoint_session_closed_renders_in_a_session_of_its_own(
    cluster: SeededCluster,
) -> None:
    """ndjson streams after the endpoint returned: the task instance has no session left to reuse."""
    ours = _one_read(cluster, LOGGING_CONFIG, "application/x-ndjson")
    assert ours.peak == 1, ours


def test_the_executor_read_waits_on_kubernetes_holding_no_connection(cluster: SeededCluster) -> None:
    """The endpoint's connection is given back before the read: a slow Kubernetes API cannot drain the pool."""
    with held_at_executor_reads(lambda: _current_counts[-1] if _current_counts else None) as held:
        _one_read(cluster, LOGGING_CONFIG, "application/json")
    assert held, "the pipeline was not called"
    assert held[-1] == 0, f"connections checked out when the executor read started: {held}"
