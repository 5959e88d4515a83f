"""
Reading a RUNNING KubernetesExecutor task's log through Airflow itself, on a real sqlite DB.

Through ``TaskLogReader`` and through the real FastAPI log endpoint: with our config the executor is
never built and no process is spawned; on provider 10.18.0 the stock config spawns the Manager.
"""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any
from unittest import mock

import pytest
from packaging.version import Version

from airflow_executor_logs.logging_config import LOGGING_CONFIG
from airflow_executor_logs.utils.processes import find_manager_processes
from tests.integration.conftest import POD_LINES, SeededCluster
from tests.support.kube import airflow_pointed_at
from tests.support.processes import child_pids, describe, new_children

PROVIDER = Version(version("apache-airflow-providers-cncf-kubernetes"))
MANAGER_IN_INIT = PROVIDER < Version("10.19.0")


@pytest.fixture
def cluster(seeded_cluster: SeededCluster) -> Iterator[SeededCluster]:
    with airflow_pointed_at(seeded_cluster.kube, seeded_cluster.kubeconfig):
        yield seeded_cluster


@pytest.fixture
def logging_configured_with() -> Iterator[Any]:
    """``logging_configured_with(config)`` applies a logging config for the test, then restores."""
    task_logger = logging.getLogger("airflow.task")
    saved = list(task_logger.handlers)

    def apply(config: dict[str, Any]) -> None:
        logging.config.dictConfig(config)

    yield apply
    task_logger.handlers[:] = saved


def _kubernetes_executor() -> type:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    return KubernetesExecutor


def _read_with_task_log_reader(ti: Any) -> list[str]:
    from airflow.utils.log.log_reader import TaskLogReader

    stream, _ = TaskLogReader().read_log_chunks(ti, ti.try_number, {})  # one pass; a stream would follow
    events: list[str] = []
    for message in stream:
        events.append(str(getattr(message, "event", message)))
        # 3.2 carries the source details on the group header, 3.3 as messages of their own
        events.extend(str(source) for source in getattr(message, "sources", None) or [])
    return events


def _assert_pod_lines(events: list[str]) -> None:
    text = "\n".join(events)
    for line in POD_LINES[-5:]:
        assert line.split("Z ", 1)[1] in text, text[-2000:]


def test_task_log_reader_builds_no_executor(cluster: SeededCluster, logging_configured_with: Any) -> None:
    logging_configured_with(LOGGING_CONFIG)
    ti = cluster.running_ti()
    before = child_pids()
    init = mock.patch.object(_kubernetes_executor(), "__init__", side_effect=AssertionError("executor built"))
    with init as constructor:
        events = _read_with_task_log_reader(ti)
    constructor.assert_not_called()
    _assert_pod_lines(events)
    assert "Found logs through kube API" in events
    left = new_children(before)
    assert not left, describe(left)


def _token(client: Any) -> str:
    response = client.get("/auth/token")
    assert response.status_code in (200, 201), response.text
    return str(response.json()["access_token"])


def test_fastapi_log_endpoint_builds_no_executor(cluster: SeededCluster, logging_configured_with: Any) -> None:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    logging_configured_with(LOGGING_CONFIG)
    before = child_pids()
    url = f"/api/v2/dags/{cluster.dag_id}/dagRuns/{cluster.run_id}/taskInstances/{cluster.task_id}/logs/1"
    with (
        mock.patch.object(_kubernetes_executor(), "__init__", side_effect=AssertionError("built")) as init,
        TestClient(create_app("core")) as client,
    ):
        headers = {"Authorization": f"Bearer {_token(client)}"}
        as_json = client.get(url, headers={**headers, "Accept": "application/json"})
        as_ndjson = client.get(url, headers={**headers, "Accept": "application/x-ndjson"})
    init.assert_not_called()
    assert as_json.status_code == 200, as_json.text
    assert as_ndjson.status_code == 200, as_ndjson.text
    _assert_pod_lines([json.dumps(as_json.json())])
    _assert_pod_lines([line for line in as_ndjson.text.splitlines() if line])
    left = new_children(before)
    assert not left, describe(left)


def test_stock_config_builds_the_executor_then_ours_does_not(
    cluster: SeededCluster, logging_configured_with: Any
) -> None:
    """The reproduction, then the fix, in one process."""
    from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG
    from airflow.utils.log.file_task_handler import FileTaskHandler

    ti = cluster.running_ti()
    executor_cls = _kubernetes_executor()
    before = child_pids()
    logging_configured_with(DEFAULT_LOGGING_CONFIG)
    with mock.patch.object(executor_cls, "__init__", autospec=True, side_effect=executor_cls.__init__) as init:
        try:
            _assert_pod_lines(_read_with_task_log_reader(ti))
            assert init.call_count == 1  # stock: the executor is built, and cached for the process
            spawned = new_children(before, settle=0.5)
            managers = [m for m in find_manager_processes() if m.pid in spawned]
            if MANAGER_IN_INIT:
                assert len(managers) == 1, describe(spawned)  # the leak the upstream issue reports
            else:
                assert managers == []  # 10.19+ made the Manager lazy; the executor is still built
        finally:
            for executor in FileTaskHandler.executor_instances.values():
                manager = getattr(executor, "_manager", None)
                if manager is not None:
                    manager.shutdown()
            FileTaskHandler.executor_instances.clear()
    assert not new_children(before)

    logging_configured_with(LOGGING_CONFIG)
    with mock.patch.object(executor_cls, "__init__", side_effect=AssertionError("built")) as init:
        _assert_pod_lines(_read_with_task_log_reader(cluster.running_ti()))
    init.assert_not_called()
    assert not new_children(before)


def test_tailing_through_the_endpoint_answers_200_with_only_the_new_lines(
    cluster: SeededCluster, logging_configured_with: Any
) -> None:
    """As the UI tails a running task: send back the continuation token. A 500 on stock 3.2.0 to 3.3.0."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    logging_configured_with(LOGGING_CONFIG)
    url = f"/api/v2/dags/{cluster.dag_id}/dagRuns/{cluster.run_id}/taskInstances/{cluster.task_id}/logs/1"
    ti = cluster.running_ti()
    pod = f"{ti.task_id}-{ti.try_number}-pod".replace("_", "-").lower()  # as tests.support.kube names it
    new_line = "2026-01-01T00:00:59.000000Z pod says a line written after the first read"
    with TestClient(create_app("core")) as client:
        headers = {"Authorization": f"Bearer {_token(client)}", "Accept": "application/json"}
        first = client.get(url, headers=headers)
        assert first.status_code == 200, first.text
        token = first.json()["continuation_token"]
        assert token
        cluster.kube.append_logs(pod, [new_line])
        more = client.get(url, headers=headers, params={"token": token})
    assert more.status_code == 200, more.text[:1000]
    text = json.dumps(more.json()["content"])
    assert new_line.split("Z ", 1)[1] in text
    assert POD_LINES[-1].split("Z ", 1)[1] not in text  # already sent: not sent again
