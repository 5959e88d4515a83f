"""
The answer memory through the real endpoint and the loopback Kubernetes API: many viewers cost one call
per answer_ttl, and a hung API shows the last good lines with a warning line at the end of the log.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from airflow_executor_logs.executors.answer_memory import AnswerMemory
from airflow_executor_logs.executors.log_pipeline import (
    ExecutorLogPipeline,
    read_running_task_log,
    use_process_pipeline,
)
from airflow_executor_logs_testing import Fault
from airflow_executor_logs_testing.kube_client import FakeClock
from tests.integration.conftest import POD_LINES, SeededCluster
from tests.support.kube import airflow_pointed_at

pytest_asyncio = pytest.importorskip("pytest_asyncio")
httpx = pytest.importorskip("httpx")

READ_TIMEOUT = 2.0
ANSWER_TTL = 1.0
#: What the endpoint may add around the read on a loaded machine (a bound, not a speed target).
OVERHEAD = 10.0


@pytest.fixture
def cluster(seeded_cluster: SeededCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeededCluster]:
    monkeypatch.setenv("AIRFLOW__EXECUTOR_LOGS__ANSWER_TTL", str(ANSWER_TTL))  # the default, back
    with airflow_pointed_at(seeded_cluster.kube, seeded_cluster.kubeconfig, read_timeout=str(READ_TIMEOUT)):
        yield seeded_cluster
    seeded_cluster.kube.clear_faults()


def _log_calls(cluster: SeededCluster) -> int:
    return len([request for request in cluster.kube.requests if request.route == "log"])


def _allowed(elapsed: float) -> int:
    """Log calls one task may cost in ``elapsed`` seconds: one per answer_ttl begun."""
    return 1 + math.floor(elapsed / ANSWER_TTL)


def test_sequential_reads_within_answer_ttl_cost_one_kubernetes_call(cluster: SeededCluster) -> None:
    ti = cluster.running_ti()
    before = _log_calls(cluster)
    started = time.monotonic()
    answers = [read_running_task_log(ti, ti.try_number) for _ in range(50)]
    elapsed = time.monotonic() - started
    assert all(answer == answers[0] for answer in answers)
    assert POD_LINES[-1] in answers[0][1][0]
    calls = _log_calls(cluster) - before
    assert 1 <= calls <= _allowed(elapsed), (calls, elapsed)  # 50 without answer_ttl


def test_concurrent_viewers_cost_one_kubernetes_call_per_answer_ttl(cluster: SeededCluster) -> None:
    ti = cluster.running_ti()
    before = _log_calls(cluster)
    answers: list[Any] = []
    lock = threading.Lock()

    def viewer() -> None:
        for _ in range(5):
            answer = read_running_task_log(ti, ti.try_number)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=viewer) for _ in range(30)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.monotonic() - started
    assert len(answers) == 150
    assert all(POD_LINES[-1] in answer[1][0] for answer in answers)
    calls = _log_calls(cluster) - before
    assert 1 <= calls <= _allowed(elapsed), (calls, elapsed)  # 150 without reuse or coalescing


# ------------------------------------------------------------------ the app on the test's event loop


@pytest_asyncio.fixture
async def client(cluster: SeededCluster) -> AsyncIterator[Any]:
    """An httpx client on the real app, in-process, with our logging config on ``airflow.task``."""
    import logging
    import logging.config

    from airflow.api_fastapi.app import create_app

    from airflow_executor_logs.logging_config import LOGGING_CONFIG

    task_logger = logging.getLogger("airflow.task")
    saved = list(task_logger.handlers)
    logging.config.dictConfig(LOGGING_CONFIG)
    try:
        transport = httpx.ASGITransport(app=create_app("core"))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            token = (await http.get("/auth/token")).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            yield http
    finally:
        task_logger.handlers[:] = saved


def _url(cluster: SeededCluster) -> str:
    return f"/api/v2/dags/{cluster.dag_id}/dagRuns/{cluster.run_id}/taskInstances/{cluster.task_id}/logs/1"


def _events(response: Any) -> list[dict[str, Any]]:
    return list(json.loads(response.text)["content"])


def _assert_warning_after_the_last_lines(poll: Any) -> None:
    assert poll.status_code == 200, poll.text[:500]
    events = _events(poll)
    assert POD_LINES[-1].split("Z ", 1)[1] in json.dumps(events)  # the last good lines
    warning = events[-1]  # and, last, what failed
    assert warning.get("level") == "warning", warning
    # Timed out, or (on a loaded machine, once three reads have) skipped by the open breaker.
    assert warning["event"].startswith((f"Kubernetes API timed out ({READ_TIMEOUT:g} s)", "Kubernetes API failed ")), (
        warning
    )
    assert ": lines above from " in warning["event"], warning
    assert " ago); retry in " in warning["event"]
    assert "served logs" not in poll.text


@pytest.fixture
def memory_clock() -> Iterator[FakeClock]:
    """The answer memory's clock, moved by the test: a pause is exactly as long as it says on any machine."""
    clock = FakeClock()
    pipeline = ExecutorLogPipeline()
    pipeline.policy = AnswerMemory(lambda: pipeline.settings, clock=clock)
    previous = use_process_pipeline(pipeline)
    try:
        yield clock
    finally:
        use_process_pipeline(previous)


async def _hang_after(
    cluster: SeededCluster, client: Any, clock: FakeClock, pause: float
) -> tuple[Any, list[Any], float]:
    """A good read, ``pause`` seconds on the memory's clock, then the API hangs and 8 viewers poll at once."""
    first = await client.get(_url(cluster))
    assert first.status_code == 200, first.text[:500]
    assert POD_LINES[-1].split("Z ", 1)[1] in first.text
    clock.advance(pause)
    cluster.kube.inject("log", Fault.hang())
    started = time.monotonic()
    polls = await asyncio.gather(*(client.get(_url(cluster)) for _ in range(8)))
    elapsed = time.monotonic() - started
    assert elapsed <= READ_TIMEOUT + OVERHEAD, elapsed  # cut at the deadline, not the hang
    return first, polls, elapsed


@pytest.mark.asyncio
async def test_while_people_watch_a_hang_holds_one_poll_and_the_others_get_the_last_answer(
    cluster: SeededCluster, memory_clock: FakeClock, client: Any
) -> None:
    """Stale while revalidate: the poll that reads gets the warning at the deadline, the others do not wait."""
    first, polls, _ = await _hang_after(cluster, client, memory_clock, pause=1.5 * ANSWER_TTL)  # within two
    stood_in = [poll for poll in polls if _events(poll) == _events(first)]
    assert stood_in, "no poll got the previous answer while the read hung"
    for poll in polls:
        if poll not in stood_in:
            _assert_warning_after_the_last_lines(poll)
    assert len(stood_in) < len(polls)  # the poll that read got the timeout
    _assert_warning_after_the_last_lines(await client.get(_url(cluster)))  # the next poll: the warning


@pytest.mark.asyncio
async def test_after_a_pause_concurrent_polls_during_a_hang_all_show_the_last_lines_and_a_warning(
    cluster: SeededCluster, memory_clock: FakeClock, client: Any
) -> None:
    _, polls, _ = await _hang_after(cluster, client, memory_clock, pause=2.5 * ANSWER_TTL)  # nobody watched
    for poll in polls:
        _assert_warning_after_the_last_lines(poll)
