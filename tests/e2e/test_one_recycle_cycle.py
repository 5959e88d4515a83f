"""
One real ``airflow api-server`` run with one worker-recycle cycle, on whatever core is installed.

The compatibility cells run this module (core 3.0, 3.1 and 3.4): where the core offers ``[api] server_type``
(gunicorn), a rolling worker refresh replaces every worker; elsewhere (uvicorn only) each worker is SIGKILLed
and uvicorn's supervisor starts a new one. With our LOGGING_CONFIG every worker, old and new, serves the pod's
lines, a continuation-token read answers 200 with only the new lines, and no Manager appears, in the server
tree or orphaned under its ``TMPDIR``. The stock control, where the provider forks a Manager in
``KubernetesExecutor.__init__``, shows the leak on this core: a Manager per serving worker, orphaned by the
recycle.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

import psutil
import pytest

from airflow_executor_logs.utils.processes import ManagerProcess, is_gone
from airflow_executor_logs.utils.zygote import is_helper_cmdline
from airflow_executor_logs_testing.executors import FALLBACK_SOURCE
from tests.e2e.conftest import FALLBACK_RUN, FIX, MANAGER_IN_INIT, POD_LINES, PROVIDER, STOCK, Deployment, assert_tails
from tests.support.process_control import find_processes_with_env, wait_gone
from tests.support.sandbox import ApiServer

pytestmark = [pytest.mark.e2e]

WORKERS = 2
REFRESH_INTERVAL = 6
RECYCLE_DEADLINE = 120.0
READS = 4


def offers_gunicorn() -> bool:
    """Whether this core can run its API server under gunicorn (``[api] server_type``, 3.2 and later)."""
    from airflow.configuration import conf

    return conf.has_option("api", "server_type")


@dataclass
class Cycle:
    """What one recycle run saw."""

    how: str
    first: set[int]
    new: set[int] = field(default_factory=set)
    served_before: set[int] = field(default_factory=set)
    served_after: set[int] = field(default_factory=set)
    managers: list[ManagerProcess] = field(default_factory=list)


def start_server(deployment: Deployment, logging_config: str) -> ApiServer:
    env = {"AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": logging_config}
    if offers_gunicorn():
        return deployment.sandbox.api_server(
            workers=WORKERS,
            server_type="gunicorn",
            worker_refresh_interval=REFRESH_INTERVAL,
            worker_refresh_batch_size=WORKERS,  # a cycle replaces every worker at once: one step, not one per worker
            extra_env=env,
        )
    return deployment.sandbox.api_server(workers=WORKERS, server_type="uvicorn", extra_env=env)


def serve(server: ApiServer, reads: int = READS) -> set[int]:
    """``reads`` right answers on fresh connections; the workers they could be attributed to (may be none)."""
    served: set[int] = set()
    for _ in range(reads):
        response = server.fetch_task_log()
        assert response.status_code == 200, response.text[:500]
        assert POD_LINES[0] in response.text, response.text[-1500:]
        assert POD_LINES[-1] in response.text, response.text[-1500:]
        if response.worker_pid is not None:
            served.add(response.worker_pid)
    return served


def recycle(server: ApiServer, cycle: Cycle) -> None:
    """
    Replace every first worker once: wait for gunicorn's rolling refresh, or SIGKILL each uvicorn worker.

    A worker already gone counts as replaced (uvicorn's supervisor also replaces one that misses its ping).
    """
    if cycle.how == "uvicorn SIGKILL":
        for pid in cycle.first:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + RECYCLE_DEADLINE
    while True:
        # Between the SIGKILL and the new workers, uvicorn's supervisor is the only process listening.
        current = set(server.worker_pids()) - {server.pid}
        cycle.new |= current - cycle.first
        if len(cycle.new) >= WORKERS and not current & cycle.first:
            return
        assert time.monotonic() < deadline, f"one recycle cycle did not finish: first {cycle.first}, now {current}"
        time.sleep(0.3)


def steady_workers(server: ApiServer) -> set[int]:
    """The workers once there are ``WORKERS`` of them (a gunicorn refresh may be under way when the server is ready)."""
    deadline = time.monotonic() + RECYCLE_DEADLINE
    while len(workers := set(server.worker_pids()) - {server.pid}) != WORKERS:
        assert time.monotonic() < deadline, f"expected {WORKERS} workers, got {workers}"
        time.sleep(0.3)
    return workers


def run_cycle(server: ApiServer) -> Cycle:
    """
    Serve, replace every worker, serve again (only new workers are left); the Managers under the server's TMPDIR.

    gunicorn keeps refreshing every ``REFRESH_INTERVAL`` seconds, so the reads before the cycle may already
    reach a new worker: the cycle is over once every first worker is gone and ``WORKERS`` new ones were seen.
    """
    started = time.monotonic()
    how = "gunicorn refresh" if server.server_type == "gunicorn" else "uvicorn SIGKILL"
    cycle = Cycle(how=how, first=steady_workers(server))
    cycle.served_before = serve(server)
    recycle(server, cycle)
    cycle.served_after = serve(server)  # no first worker is left: new workers answer
    cycle.managers = server.managers()
    print(f"\n[recycle:{how}] server ready in {server.ready_after:.1f}s, cycle {time.monotonic() - started:.1f}s")
    return cycle


def strays(server: ApiServer) -> list[str]:
    """Live (non-zombie) processes with this server's TMPDIR outside its tree."""
    tree = server.tree_pids()
    found = find_processes_with_env("TMPDIR", server.tmpdir)
    return [f"{p.pid} {p.name()}" for p in found if p.pid not in tree and not is_gone(p)]


def assert_nothing_survives(deployment: Deployment, server: ApiServer) -> None:
    assert not server.running
    assert server.managers() == []
    assert deployment.sandbox.managers() == []
    assert [p.pid for p in find_processes_with_env("TMPDIR", server.tmpdir) if not is_gone(p)] == []


def serve_fallback(server: ApiServer, reads: int = 2, *, until_seen: bool = False) -> set[int]:
    """
    ``reads`` reads of the fallback task (a short-lived executor each); the zygotes seen under the server after each
    (``until_seen``: stop at the first read after which one is seen).

    Each worker forks those reads from its single-threaded helper: no fork of the threaded worker, so no
    "multi-threaded, use of fork()" warning (Python 3.12+) in the server's log. gunicorn replaces its workers
    every few seconds here, and each worker's helper goes with it: they are looked for right after each read.
    """
    seen: set[int] = set()
    for _ in range(reads):
        response = server.fetch_task_log(run_id=FALLBACK_RUN[0])
        assert response.status_code == 200, response.text[:500]
        assert FALLBACK_SOURCE in response.text, response.text[-1500:]
        seen |= {p.pid for p in server.process_tree() if _is_zygote(p)}
        if until_seen and seen:
            break
    return seen


def _processes(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _is_zygote(process: psutil.Process) -> bool:
    try:
        return is_helper_cmdline(process.cmdline())
    except psutil.Error:
        return False


def test_ours_serves_every_worker_across_a_recycle_tails_and_leaks_nothing(deployment: Deployment) -> None:
    server = start_server(deployment, FIX)
    with server:
        helpers_before = serve_fallback(server)
        assert helpers_before, "no helper seen under the server after the fallback reads"
        cycle = run_cycle(server)
        assert cycle.managers == [], f"Managers appeared: {cycle.managers}"
        assert strays(server) == [], "processes outside the server tree"
        # The first workers are gone, and their helpers with them (the kernel signals a helper when its worker dies).
        assert wait_gone(_processes(helpers_before), timeout=10) == []
        # A helper dies the moment its worker does (PR_SET_PDEATHSIG), and gunicorn replaces a worker every few
        # seconds here: the one that served a read may already be gone when the tree is looked at.
        assert serve_fallback(server, reads=4, until_seen=True)
        assert "use of fork() may lead to deadlocks" not in server.log_text()

        assert_tails(deployment, server)
        print(
            f"\n[recycle:{cycle.how}] ours: workers {sorted(cycle.first)} -> {sorted(cycle.new)}, served before "
            f"{sorted(cycle.served_before)} after {sorted(cycle.served_after)}, Managers 0, tailing 200"
        )
    assert_nothing_survives(deployment, server)


@pytest.mark.skipif(not MANAGER_IN_INIT, reason=f"provider {PROVIDER} no longer forks a Manager in __init__")
def test_stock_control_leaks_a_manager_per_worker_and_the_recycle_orphans_them(deployment: Deployment) -> None:
    """Proves the accounting above sees the leak it reports as absent, on this core."""
    server = start_server(deployment, STOCK)
    with server:
        cycle = run_cycle(server)
        orphaned = [m for m in cycle.managers if m.orphaned or m.ppid in cycle.first]
        print(
            f"\n[recycle:{cycle.how}] stock: workers {sorted(cycle.first)} -> {sorted(cycle.new)}; "
            f"{len(cycle.managers)} Managers alive, {len(orphaned)} of them orphaned by the recycle "
            f"({[(m.pid, m.ppid, m.orphan_reason) for m in cycle.managers]})"
        )
        assert len(cycle.managers) >= 2, "expected a Manager from a worker before and one after the recycle"
        assert orphaned, "the recycle orphaned no Manager"
    assert_nothing_survives(deployment, server)
