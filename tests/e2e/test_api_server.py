"""
A real ``airflow api-server`` serving a RUNNING KubernetesExecutor task's log, with worker recycling.

With our LOGGING_CONFIG no Manager (or any other process) appears, under the server tree or outside
it; the control, without it on provider 10.18.0, shows at least one Manager per worker.
"""

from __future__ import annotations

import time

import psutil
import pytest

from airflow_executor_logs.testing.airflow_sandbox import ApiServer
from airflow_executor_logs.utils.processes import find_processes_with_env
from tests.e2e.conftest import MANAGER_IN_INIT, POD_LINES, PROVIDER, STOCK, Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REQUESTS = 50


def _assert_pod_lines(text: str) -> None:
    assert POD_LINES[-1] in text, text[-1500:]
    assert POD_LINES[0] in text, text[-1500:]


def _strays(server: ApiServer, expected: set[int]) -> list[str]:
    """Processes of this server (by its own TMPDIR) that are not the expected root and workers."""
    found = []
    for process in find_processes_with_env("TMPDIR", server.tmpdir):
        if process.pid not in expected:
            try:
                found.append(f"{process.pid} ppid={process.ppid()} {' '.join(process.cmdline())[:100]}")
            except psutil.Error:
                continue
    return found


def _assert_nothing_survives(deployment: Deployment, server: ApiServer) -> None:
    assert not server.running
    assert server.managers() == []
    assert deployment.sandbox.managers() == []
    assert _strays(server, set()) == []


def test_uvicorn_two_workers_serve_pod_logs_without_spawning(deployment: Deployment) -> None:
    server = deployment.sandbox.api_server(workers=2, server_type="uvicorn")
    with server:
        expected = server.tree_pids()
        served: dict[int | None, int] = {}
        for n in range(REQUESTS):
            response = server.fetch_task_log(ndjson=bool(n % 2))
            assert response.status_code == 200, response.text[:500]
            _assert_pod_lines(response.text)
            served[response.worker_pid] = served.get(response.worker_pid, 0) + 1
        print(f"[uvicorn] {REQUESTS} requests served per worker: {served}")
        assert server.managers() == []
        assert server.tree_pids() == expected, "the server tree grew while serving logs"
        assert _strays(server, expected) == []
    _assert_nothing_survives(deployment, server)


def test_gunicorn_worker_refresh_leaves_no_orphans(deployment: Deployment) -> None:
    server = deployment.sandbox.api_server(workers=2, server_type="gunicorn", worker_refresh_interval=4)
    with server:
        first = set(server.worker_pids())
        generations = set(first)
        deadline = time.monotonic() + 150
        requests = 0
        while len(generations - first) < 3:  # three refresh cycles, each bringing a new worker
            assert time.monotonic() < deadline, f"only {len(generations - first)} refresh cycles happened"
            response = server.fetch_task_log(ndjson=bool(requests % 2))
            requests += 1
            assert response.status_code == 200, response.text[:500]
            _assert_pod_lines(response.text)
            generations.update(server.worker_pids())
            assert server.managers() == [], "a Manager appeared"
            time.sleep(0.5)
        print(f"[gunicorn] {requests} requests over {len(generations)} workers ({len(generations - first)} new)")
        assert _strays(server, server.tree_pids()) == [], "orphans outside the server tree"
    _assert_nothing_survives(deployment, server)


@pytest.mark.skipif(not MANAGER_IN_INIT, reason=f"provider {PROVIDER} no longer forks a Manager in __init__")
def test_control_without_our_config_leaks_a_manager_per_worker(deployment: Deployment) -> None:
    """Proves the process accounting above can see the leak it reports as absent."""
    server = deployment.sandbox.api_server(
        workers=2, server_type="uvicorn", extra_env={"AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": STOCK}
    )
    with server:
        workers = set(server.worker_pids())
        served: set[int] = set()
        deadline = time.monotonic() + 120
        while served != workers and time.monotonic() < deadline:
            response = server.fetch_task_log()
            assert response.status_code == 200, response.text[:500]
            _assert_pod_lines(response.text)
            if response.worker_pid is not None:
                served.add(response.worker_pid)
        managers = server.managers()
        print(f"[control] workers={sorted(workers)} served={sorted(served)} Managers={[m.pid for m in managers]}")
        assert served, "no request could be attributed to a worker"
        for worker in served:
            assert sum(m.ppid == worker for m in managers) >= 1, f"no Manager under worker {worker}"
    _assert_nothing_survives(deployment, server)
