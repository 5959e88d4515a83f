"""
Smoke tests for the e2e harness: a real ``airflow api-server`` serving the log of a RUNNING task.

Without any fix, with cncf-kubernetes 10.18.0 every API worker that serves such a log builds a
KubernetesExecutor, which forks a ``multiprocessing.Manager`` server that is never shut down; with
gunicorn worker refresh those Managers are orphaned to PID 1 and accumulate. Newer providers
(>= 10.25.0) create the Manager lazily in ``start()`` so no Manager appears at all.
"""

from __future__ import annotations

import importlib.metadata
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from packaging.version import Version

from airflow_executor_logs.testing.airflow_sandbox import AirflowSandbox, ApiServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_executor_logs.utils.processes import ManagerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROVIDER_VERSION = Version(importlib.metadata.version("apache-airflow-providers-cncf-kubernetes"))
#: Provider versions known to fork a Manager in ``KubernetesExecutor.__init__`` / known not to.
LEAKING = PROVIDER_VERSION.release == (10, 18, 0)
FIXED = PROVIDER_VERSION.release >= (10, 25, 0)
K8S_FAILED_FAST = "Reading from k8s pod logs failed"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AirflowSandbox]:
    started = time.monotonic()
    with AirflowSandbox() as sb:
        took = time.monotonic() - started
        print(f"\n[sandbox] {sb.root} ready in {took:.1f}s (cncf-kubernetes {PROVIDER_VERSION})")
        yield sb
    assert sb.managers() == [], "sandbox cleanup left Manager processes behind"


def _orphaned(managers: list[ManagerProcess], server: ApiServer) -> list[ManagerProcess]:
    tree = server.tree_pids()
    return [m for m in managers if m.orphaned or m.ppid not in tree]


def _assert_all_gone(sandbox: AirflowSandbox, server: ApiServer, seen: set[int]) -> None:
    assert not server.running
    assert sandbox.managers() == [], "Managers left under the sandbox TMPDIR after stop()"
    alive = [pid for pid in seen if psutil.pid_exists(pid) and _same_server_process(pid, server)]
    assert alive == [], f"server processes still alive after stop(): {alive}"


def _same_server_process(pid: int, server: ApiServer) -> bool:
    try:
        return psutil.Process(pid).environ().get("TMPDIR") == server.tmpdir
    except psutil.Error:
        return False


def test_uvicorn_running_task_log(sandbox: AirflowSandbox) -> None:
    server = sandbox.api_server(workers=2, server_type="uvicorn")
    seen: set[int] = set()
    with server:
        workers = server.worker_pids()
        print(f"[uvicorn] ready in {server.ready_after:.1f}s, root={server.pid} workers={workers}")
        assert len(workers) == 2

        served: dict[int, int] = {}
        for i in range(10):
            r = server.fetch_task_log(ndjson=bool(i % 2))
            print(f"[uvicorn] request {i}: HTTP {r.status_code} in {r.elapsed:.2f}s by worker {r.worker_pid}")
            assert r.status_code == 200, r.text[:500]
            assert K8S_FAILED_FAST in r.text, r.text[:500]
            if r.worker_pid is not None:
                served[r.worker_pid] = served.get(r.worker_pid, 0) + 1
            if i >= 3 and len(served) == len(workers):
                break
        assert served, "could not attribute any request to a worker"

        managers = server.managers()
        seen |= server.tree_pids() | {m.pid for m in managers}
        for m in managers:
            print(
                f"[uvicorn] Manager pid={m.pid} ppid={m.ppid} rss={m.rss >> 20}MiB "
                f"uss={(m.uss or 0) >> 20}MiB orphaned={m.orphaned} socket={m.socket_path}"
            )
        print(f"[uvicorn] requests per worker={served}, Managers={len(managers)}")
        assert {m.socket_path for m in managers} == {m.socket_path for m in sandbox.managers()}
        if LEAKING:
            for worker in served:
                assert sum(m.ppid == worker for m in managers) >= 1, f"no Manager under worker {worker}"
            assert len(managers) == len(served), "expected exactly one Manager per serving worker"
        elif FIXED:
            assert managers == []

        # What does a graceful shutdown (SIGTERM to the uvicorn parent only) leave behind?
        exited = server.terminate_root(timeout=30)
        time.sleep(1)
        left = sandbox.managers()
        print(
            f"[uvicorn] graceful SIGTERM: root exited={exited}, Managers still alive={len(left)} "
            f"(orphaned={sum(m.orphaned for m in left)})"
        )
    _assert_all_gone(sandbox, server, seen)


def test_gunicorn_worker_refresh_orphans_managers(sandbox: AirflowSandbox) -> None:
    server = sandbox.api_server(workers=2, server_type="gunicorn", worker_refresh_interval=5)
    seen: set[int] = set()
    history: list[tuple[float, int, int]] = []
    worker_generations: set[int] = set()
    with server:
        workers = server.worker_pids()
        print(f"[gunicorn] ready in {server.ready_after:.1f}s, root={server.pid} workers={workers}")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 45:
            r = server.fetch_task_log()
            assert r.status_code == 200, r.text[:500]
            assert K8S_FAILED_FAST in r.text, r.text[:500]
            workers = server.worker_pids()
            worker_generations.update(workers)
            managers = server.managers()
            orphaned = _orphaned(managers, server)
            seen |= server.tree_pids() | {m.pid for m in managers}
            t = time.monotonic() - t0
            history.append((t, len(managers), len(orphaned)))
            print(
                f"[gunicorn] t={t:5.1f}s request {r.elapsed:5.2f}s by {r.worker_pid} workers={workers} "
                f"Managers={len(managers)} orphaned={len(orphaned)} ppids={[m.ppid for m in managers]}"
            )
            time.sleep(1)

        final_orphans = history[-1][2]
        print(
            f"[gunicorn] {len(worker_generations)} distinct workers over {history[-1][0]:.0f}s, "
            f"Managers total={history[-1][1]} orphaned={final_orphans}"
        )
        if LEAKING:
            assert len(worker_generations) > 2, "no worker refresh happened"
            assert final_orphans >= 2, f"expected orphaned Managers to accumulate: {history}"
            orphan_counts = [o for _, _, o in history]
            assert max(orphan_counts) == final_orphans
            assert len(set(orphan_counts)) >= 3, "orphans did not accumulate across refresh cycles"
        elif FIXED:
            assert history[-1][1] == 0
    _assert_all_gone(sandbox, server, seen)
