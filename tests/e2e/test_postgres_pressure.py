"""
A hung Kubernetes API must not take the API server down: a real api-server on a real PostgreSQL.

One uvicorn worker with Airflow's default pool (5 + 10 connections), a loopback Kubernetes API that
accepts every connection and never answers, and 32 viewers polling a RUNNING task's log every 2 s
(the issue-12 target setup). Meanwhile ``GET /api/v2/version`` must keep answering within 1 s, and no
log request may get a 5xx or go unanswered. Stock Airflow fails this: its reads hold the pool's
connections until the event loop blocks on the token check's checkout and the version probe times out
(see benchmarks/README.md, "Viewers").
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from airflow_executor_logs_testing import Fault
from benchmarks.viewers import Deployment, Load, api_server, deployment, drive, uptime, warm_up
from tests.support.postgres import missing_reason

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VIEWERS = 32
DURATION = 20.0
READ_TIMEOUT = 5.0
#: The other endpoint's answer time the target asks for.
PROBE_LIMIT = 1.0


@pytest.fixture(scope="module")
def postgres_deployment() -> Iterator[Deployment]:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with deployment(1, executor_logs={"read_timeout": str(READ_TIMEOUT)}) as dep:
        yield dep


def test_hung_kubernetes_api_with_32_viewers_leaves_the_server_answering(postgres_deployment: Deployment) -> None:
    dep = postgres_deployment
    started = time.monotonic()
    with api_server(dep, "ours", workers=1) as server:
        warm_up(server, tasks=1, rounds=2)
        dep.kube.inject("*", Fault.hang())
        try:
            load = Load(
                viewers=VIEWERS, tasks=1, duration=DURATION, client_timeout=READ_TIMEOUT + 15, probe_timeout=10.0
            )
            result = drive(server, load, dep.kube)
        finally:
            dep.kube.clear_faults()
    summary = result.summary()
    print(f"\n[pressure] {time.monotonic() - started:.0f}s, {uptime()}\n[pressure] {summary}")

    probes = result.of("version")
    slow = [
        f"{s.status} after {s.elapsed:.2f}s {s.error[:120]}"
        for s in probes
        if s.status != 200 or s.elapsed > PROBE_LIMIT
    ]
    assert probes
    assert not slow, f"GET /api/v2/version: {len(slow)} of {len(probes)} slow or failed: {slow[:5]}"

    logs = result.of("log")
    failed = [f"{s.status} after {s.elapsed:.1f}s: {s.error[:200]}" for s in logs if s.status != 200]
    assert len(logs) >= VIEWERS, summary
    assert not failed, f"{len(failed)} of {len(logs)} log requests failed (5xx or no answer): {failed[:5]}"
    unclear = [s for s in logs if not s.clear_message]
    assert not unclear, f"{len(unclear)} log answers without a message saying why there are no pod lines"
