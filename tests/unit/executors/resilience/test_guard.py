"""The guard holds every reader to ``read_timeout`` through the pipeline, and bounds the threads hung readers leave."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.problem_answers import PassThrough
from airflow_executor_logs.executors.reader_protocol import Notice
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.executors.resilience.guard import ReaderGuard
from airflow_executor_logs.metrics import RecordingMetrics
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.task_instances import fake_ti

#: Short, so that hung reads cost little. The bound is generous, for a loaded machine: the hung readers below
#: would block for 60 s, so an answer within it was still cut at the deadline.
READ_TIMEOUT = 0.25
BOUND = READ_TIMEOUT + 10.0
MAX_BLOCKED = 4


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of each test, so that readers still hanging return and their threads end."""
    event = threading.Event()
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield event
    event.set()


@pytest.fixture
def pipeline(release: threading.Event) -> ExecutorLogPipeline:
    """Two third-party readers: one hangs before answering, one hangs halfway through its lines."""

    def sleeps_past_the_deadline(executor: Any, ti: Any, try_number: int, context: Any) -> Any:
        release.wait(60)
        return ["too late"], []

    def blocks_halfway(executor: Any, ti: Any, try_number: int, context: Any) -> Any:
        def lines() -> Iterator[str]:
            yield from ["first", "second", "third"]
            release.wait(60)
            yield "never seen"

        return ["streaming"], [lines()]

    pipeline = ExecutorLogPipeline(
        settings=Settings(read_timeout=READ_TIMEOUT), max_blocked_readers=MAX_BLOCKED, policy=PassThrough()
    )
    pipeline.register(fx.CountingExecutor, sleeps_past_the_deadline)
    pipeline.register(fx.ManagerExecutor, blocks_halfway)
    # Warm up what a first read imports before its reader runs (the deadline covers the reader).
    pipeline.read(fake_ti("PlainExecutor"), 1)
    pipeline.read(fake_ti("NativeReaderExecutor"), 1)  # emits a metric: imports Stats
    for executor in ("CountingExecutor", "ManagerExecutor"):
        pipeline.resolver.resolve(fake_ti(executor), multi_team=False)
    return pipeline


def _timed(read: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = read()
    return time.monotonic() - started, result


def test_a_reader_that_hangs_before_answering_is_cut(pipeline: ExecutorLogPipeline) -> None:
    elapsed, (messages, logs) = _timed(lambda: pipeline.read(fake_ti("CountingExecutor"), 1))
    assert READ_TIMEOUT <= elapsed <= BOUND, elapsed
    detail = "Executor logs unavailable: sleeps_past_the_deadline timed out after 0.25 s ([executor_logs] read_timeout)"
    assert messages == [detail]  # a source message: core does not go on to the worker's served logs
    assert [(json.loads(line)["event"], json.loads(line)["level"]) for line in logs] == [
        ("sleeps_past_the_deadline timed out (0.25 s)", "warning")
    ]


def test_a_stream_that_hangs_halfway_keeps_the_lines_read(pipeline: ExecutorLogPipeline) -> None:
    elapsed, (messages, logs) = _timed(lambda: pipeline.read(fake_ti("ManagerExecutor"), 1))
    assert READ_TIMEOUT <= elapsed <= BOUND, elapsed
    assert messages == [
        "streaming",
        "blocks_halfway timed out after 0.25 s ([executor_logs] read_timeout); "
        "showing the 3 lines read before the deadline",
    ]
    assert logs == ["first\nsecond\nthird\n" + Notice(messages[-1])]  # the problem also ends the log


def test_the_streaming_form_is_cut_while_core_iterates(pipeline: ExecutorLogPipeline) -> None:
    messages, streams = pipeline.read_streaming(fake_ti("ManagerExecutor"), 1)
    assert messages == ["streaming"]
    elapsed, lines = _timed(lambda: list(streams[0]))
    assert elapsed <= BOUND, elapsed
    assert lines == [
        "first",
        "second",
        "third",
        Notice(
            "blocks_halfway timed out after 0.25 s ([executor_logs] read_timeout); "
            "showing the 3 lines read before the deadline"
        ),
    ]


def _reader_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("executor-logs-reader-")]


@pytest.mark.parametrize("executor", ["CountingExecutor", "ManagerExecutor"], ids=["hangs-first", "hangs-halfway"])
def test_twenty_hung_reads_leave_a_bounded_number_of_threads(pipeline: ExecutorLogPipeline, executor: str) -> None:
    before = len(_reader_threads())
    answers = []
    for _ in range(20):
        elapsed, answer = _timed(lambda: pipeline.read(fake_ti(executor), 1))
        assert elapsed <= BOUND, elapsed  # the refused ones at once
        answers.append(answer)
    assert len(_reader_threads()) - before <= MAX_BLOCKED
    assert pipeline.guard.blocked(_reader_name(executor)) == MAX_BLOCKED
    refused = [messages for messages, _ in answers if any("still blocked past their deadline" in m for m in messages)]
    assert len(refused) == 20 - MAX_BLOCKED  # refused at once, once the bound is reached


def test_a_read_refused_for_blocked_threads_is_counted_as_a_refusal(release: threading.Event) -> None:
    """Answered REFUSED, so counted with the refusals (the blocked threads are the reader's bulkhead), not failures."""
    counted = RecordingMetrics()
    settings = Settings(read_timeout=READ_TIMEOUT)
    pipeline = ExecutorLogPipeline(settings=settings, max_blocked_readers=1, policy=PassThrough(), metrics=counted)
    pipeline.register(fx.CountingExecutor, lambda executor, ti, try_number, context: release.wait(60) and ([], []))
    pipeline.read(fake_ti("CountingExecutor"), 1)  # cut at the deadline, its thread left blocked
    messages, _ = pipeline.read(fake_ti("CountingExecutor"), 1)  # refused: the bound is reached
    assert any("still blocked past their deadline" in message for message in messages), messages
    assert [name for name in counted.names() if name != metrics.CLASS_READS] == [
        metrics.TIMEOUTS,
        metrics.BULKHEAD_REFUSALS,
    ]


def _reader_name(executor: str) -> str:
    return "sleeps_past_the_deadline" if executor == "CountingExecutor" else "blocks_halfway"


def test_a_blocked_reader_frees_its_slot_when_it_returns(
    pipeline: ExecutorLogPipeline, release: threading.Event
) -> None:
    for _ in range(MAX_BLOCKED):
        pipeline.read(fake_ti("CountingExecutor"), 1)
    assert pipeline.guard.blocked("sleeps_past_the_deadline") == MAX_BLOCKED
    release.set()
    give_up = time.monotonic() + 30
    while pipeline.guard.blocked("sleeps_past_the_deadline") and time.monotonic() < give_up:
        time.sleep(0.01)
    assert pipeline.guard.blocked("sleeps_past_the_deadline") == 0
    assert pipeline.read(fake_ti("CountingExecutor"), 1) == (["too late"], [""])


def test_a_consumer_that_stops_early_closes_the_readers_stream() -> None:
    closed = threading.Event()

    def lines() -> Iterator[str]:
        try:
            yield from (f"line {n}" for n in range(10_000))
        finally:
            closed.set()

    guard = ReaderGuard()
    guarded = guard.call("r", lambda: (["m"], [lines()]), Deadline(5))
    _messages, streams = guarded.answer()
    stream = guarded.adopt_streams(streams)[0]
    assert [next(stream) for _ in range(3)] == ["line 0", "line 1", "line 2"]
    stream.close()  # type: ignore[attr-defined]
    assert closed.wait(2)
