"""
Continuation reads through core's real ``_read`` and our handler: a client that sends ``log_pos`` back gets
each task line once, in order, and still sees every problem line.

The reader is scripted (what the executor's API answers at each poll); the problems are rendered by the
real pipeline and answer memory. The same checks, drawn at random through the real endpoint and the
loopback Kubernetes API, are in ``tests/integration/test_tailing_exactly_once.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.reader_protocol import (
    NOTICE_LOGGER,
    Outcome,
    ReadContext,
    ReaderRegistration,
    StreamingTaskLog,
)
from airflow_executor_logs.executors.reader_registry import class_path
from airflow_executor_logs.utils.log.continuation import Continuation
from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.task_instances import fake_ti


class ScriptedApi:
    """The executor's API as a script: the task's lines so far, and what the next read meets."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.next: str = "ok"

    def append(self, count: int) -> None:
        start = len(self.lines)
        self.lines += [
            f"2026-01-01T00:00:{n // 1000:02d}.{n % 1000:03d}Z line {n}" for n in range(start, start + count)
        ]

    def __call__(self, executor: Any, ti: Any, try_number: int, context: ReadContext) -> StreamingTaskLog:
        meets, self.next = self.next, "ok"
        if meets == "missing":
            context.report.problem(Outcome.FAILED, "Pod not found", summary="No pod for this task yet")
            return ["Pod not found"], []
        if meets == "error":
            context.report.problem(Outcome.FAILED, "API answered 500", summary="Kubernetes API failed: 500")
            return ["API answered 500"], []
        if meets == "timeout":
            context.report.problem(Outcome.TIMEOUT, "timed out", summary="Kubernetes API timed out (5 s)")
            return ["timed out"], []
        return ["Found logs"], [iter(list(self.lines))]


@pytest.fixture
def api() -> ScriptedApi:
    return ScriptedApi()


@pytest.fixture
def handler(tmp_path: Path, api: ScriptedApi) -> Iterator[Any]:
    pipeline = ExecutorLogPipeline(settings=Settings(answer_ttl=0.000001))
    pipeline.registry.register(
        ReaderRegistration(executor=class_path(fx.ManagerExecutor), reader=api, keeps_deadline=True)
    )
    handler = ExecutorLogsFileTaskHandler(base_log_folder=str(tmp_path))
    handler.executor_log_pipeline = pipeline
    handler._render_filename = lambda ti, try_number, **kwargs: "no-such-file.log"
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield handler


class Tail:
    """A client that follows ``log_pos``, as one following the endpoint's continuation token does."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.metadata: dict[str, Any] = {}
        self.lines: list[str] = []
        self.problems: list[str] = []

    def poll(self) -> list[str]:
        stream, self.metadata = self.handler.read(fake_ti("ManagerExecutor"), 1, metadata=dict(self.metadata))
        got = []
        for message in stream:
            event = str(message.event)
            if getattr(message, "logger", None) == NOTICE_LOGGER:
                self.problems.append(event)
            elif not event.startswith("::") and event not in ("Found logs",) and " line " in event:
                got.append(event)
        self.lines += got
        return got


def _texts(lines: list[str]) -> list[str]:
    return [line.split("Z ", 1)[1] for line in lines]


def test_the_first_line_after_a_problem_is_shown(handler: Any, api: ScriptedApi) -> None:
    """The issue's case: the pod is not listed on the first poll, then lines one, two, three."""
    tail = Tail(handler)
    api.next = "missing"
    assert tail.poll() == []
    assert tail.metadata["log_pos"] == 0  # the problem line is not a line of the log
    assert tail.problems
    assert "No pod for this task yet" in tail.problems[-1]
    api.append(3)
    assert _texts(tail.poll()) == ["line 0", "line 1", "line 2"]  # "line 0" was skipped before
    assert tail.metadata["log_pos"] == 3


def test_api_errors_between_lines_resend_nothing_and_stay_visible(handler: Any, api: ScriptedApi) -> None:
    tail = Tail(handler)
    api.append(6)
    tail.poll()
    for _ in range(2):
        api.next = "error"
        assert tail.poll() == []
        assert "Kubernetes API failed: 500" in tail.problems[-1]  # not swallowed by the skip
        assert tail.metadata["log_pos"] == 6  # never back
    api.append(2)
    assert _texts(tail.poll()) == ["line 6", "line 7"]
    assert _texts(tail.lines) == [f"line {n}" for n in range(8)]


def test_a_timeout_shows_the_warning_and_the_next_poll_only_new_lines(handler: Any, api: ScriptedApi) -> None:
    tail = Tail(handler)
    api.append(4)
    tail.poll()
    api.next = "timeout"
    assert tail.poll() == []  # the last good lines are above the warning, and the client has them
    assert "Kubernetes API timed out (5 s): lines above from" in tail.problems[-1]
    assert tail.metadata["log_pos"] == 4
    api.append(1)
    assert _texts(tail.poll()) == ["line 4"]


def test_an_answer_older_than_the_client_sends_nothing_again(handler: Any, api: ScriptedApi) -> None:
    """Another API worker's older answer, or a stand-in: fewer lines than the client has."""
    tail = Tail(handler)
    api.append(5)
    tail.poll()
    api.lines = api.lines[:3]
    assert tail.poll() == []
    assert tail.metadata["log_pos"] == 5
    api.append(0)
    api.lines = [f"2026-01-01T00:00:00.{n:03d}Z line {n}" for n in range(7)]
    assert _texts(tail.poll()) == ["line 5", "line 6"]


def test_a_first_read_keeps_core_s_header_and_counts_only_log_lines(handler: Any, api: ScriptedApi) -> None:
    api.next = "missing"
    stream, metadata = handler.read(fake_ti("ManagerExecutor"), 1, metadata={})
    events = [str(message.event) for message in stream]
    assert events[0] == "::group::Log message source details"
    assert metadata["log_pos"] == 0


@pytest.mark.parametrize(
    ("sent", "total", "notices", "expected"),
    [
        (None, 5, 1, 4),  # a first read: notices left out
        (3, 2, 1, 3),  # fewer lines than the client has: never back
        (3, 9, 2, 7),
        (0, 1, 1, 0),
    ],
)
def test_log_pos_handed_back(sent: int | None, total: int, notices: int, expected: int) -> None:
    read = Continuation(sent, notices)
    _, metadata = read.resume([], {"log_pos": total, "end_of_log": False})
    assert metadata == {"log_pos": expected, "end_of_log": False}


def test_core_is_asked_to_skip_nothing_on_a_continuation_read() -> None:
    assert Continuation(None).core_metadata({"x": 1}) == {"x": 1}
    assert Continuation(4).core_metadata({"log_pos": 4, "x": 1}) == {"log_pos": 0, "x": 1}
