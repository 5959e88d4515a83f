"""
A real third-party executor on the fallback: NomadExecutor (apache-airflow-providers-nomad 0.0.7).

Its ``__init__`` forks a ``multiprocessing.Manager`` and its ``get_task_log`` starts a Nomad client when it has
none. Named on a RUNNING task, beside KubernetesExecutor, read through the real FastAPI log endpoint: ours serves
the executor's messages and leaves no process; the stock config builds the executor in the API process and
leaks its Manager (the stock control). No Nomad answers: the client is pointed at a closed loopback port.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from airflow_executor_logs.utils.processes import stop_processes
from tests.integration.conftest import SeededCluster
from tests.integration.endpoint import log_endpoint, task_instance_changed
from tests.support.airflow_state import conf_vars
from tests.support.kube import airflow_pointed_at
from tests.support.processes import children_stopped_on_exit, describe, new_children

pytest.importorskip(
    "airflow.providers.nomad.executors.nomad_executor",
    reason="apache-airflow-providers-nomad is not importable here (installed on the 3.1.8 cell only; "
    "0.0.7 imports on core 3.1 only)",
)

NOMAD_EXECUTOR = "airflow.providers.nomad.executors.nomad_executor.NomadExecutor"
#: What NomadExecutor.get_task_log says when no Nomad answers (its own messages, not ours).
NOMAD_MESSAGES = ("through Nomad API", "Unexpected result from Nomad API allocations query")


def _closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def nomad_task(seeded_cluster: SeededCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeededCluster]:
    """The seeded RUNNING task on NomadExecutor, configured beside KubernetesExecutor; Nomad on a closed port."""
    port = _closed_loopback_port()
    monkeypatch.setenv("NOMAD_ADDR", f"http://127.0.0.1:{port}")  # python-nomad prefers it to host and port
    cluster = seeded_cluster
    with (
        airflow_pointed_at(cluster.kube, cluster.kubeconfig),
        conf_vars(
            {
                ("core", "executor"): f"KubernetesExecutor,{NOMAD_EXECUTOR}",
                ("nomad_provider", "agent_host"): "127.0.0.1",
                ("nomad_provider", "agent_server_port"): str(port),
            }
        ),
        task_instance_changed(cluster.dag_id, cluster.run_id, cluster.task_id, executor=NOMAD_EXECUTOR),
    ):
        yield cluster


def _manager_pids(pids: set[int]) -> set[int]:
    from airflow_executor_logs.utils.processes import find_manager_processes

    return {manager.pid for manager in find_manager_processes() if manager.pid in pids}


def test_ours_serves_the_nomad_messages_and_leaves_no_process(nomad_task: SeededCluster) -> None:
    from airflow.utils.log.file_task_handler import FileTaskHandler

    with children_stopped_on_exit() as before:  # a failure's leftovers are stopped by PID
        with log_endpoint(nomad_task.dag_id, nomad_task.task_id) as endpoint:
            response = endpoint.get(nomad_task.run_id)
            cached = dict(FileTaskHandler.executor_instances)
        assert response.status_code == 200, response.text[:1000]
        for message in NOMAD_MESSAGES:
            assert message in response.text, response.text[:2000]
        assert cached == {}  # no executor was built and kept in the API process
        left = new_children(before)
        assert not left, describe(left)


def test_stock_control_leaks_the_nomad_manager(nomad_task: SeededCluster) -> None:
    """Stock 3.1 builds NomadExecutor in the API process and keeps it: its Manager outlives the read."""
    from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG
    from airflow.utils.log.file_task_handler import FileTaskHandler

    with children_stopped_on_exit() as before:  # a failure's leftovers are stopped by PID
        with log_endpoint(nomad_task.dag_id, nomad_task.task_id, DEFAULT_LOGGING_CONFIG) as endpoint:
            response = endpoint.get(nomad_task.run_id)
        assert response.status_code == 200, response.text[:1000]
        for message in NOMAD_MESSAGES:
            assert message in response.text, response.text[:2000]
        assert list(FileTaskHandler.executor_instances) == [NOMAD_EXECUTOR]  # built and kept in the API process
        spawned = new_children(before, settle=0.5)
        managers = _manager_pids(spawned)
        print(f"[nomad stock] Managers left after one read: {len(managers)} ({sorted(managers)})")
        assert len(managers) == 1, describe(spawned)  # the leak
        assert spawned == managers, describe(spawned)

        manager_process = FileTaskHandler.executor_instances[NOMAD_EXECUTOR]._manager._process
        assert {manager_process.pid} == managers
        FileTaskHandler.executor_instances.clear()
        # Stopped by its PID through the handle that started it, which also reaps it.
        assert stop_processes([manager_process], grace=5.0) == []
        assert not new_children(before)
