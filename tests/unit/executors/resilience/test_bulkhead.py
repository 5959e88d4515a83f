"""The bulkhead: at most K class-level reads wait at once in a process; the rest are told "busy"."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.problem_answers import PassThrough
from airflow_executor_logs.executors.resilience.bulkhead import Bulkhead
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.metrics import RecordingMetrics
from airflow_executor_logs_testing.kube_client import FakeClock
from tests.support.airflow_state import conf_vars
from tests.support.task_instances import fake_ti

BUSY = (
    "Executor logs unavailable: this API server worker is busy, 2 reads of running tasks' logs are already "
    "waiting ([executor_logs] max_concurrent_reads); try again shortly"
)
#: The line at the end of the log: short, and when to look again.
BUSY_LINE = "API worker busy (2 log reads waiting)"


from airflow.executors.base_executor import BaseExecutor  # noqa: E402


class BulkheadExecutor(BaseExecutor):
    """An executor class that is never built: a registered reader answers for it."""


@pytest.fixture(autouse=True)
def _configured() -> Iterator[None]:
    with conf_vars({("core", "executor"): f"{__name__}.BulkheadExecutor"}):
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def counted() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def pipeline(clock: FakeClock, counted: RecordingMetrics) -> ExecutorLogPipeline:
    pipeline = ExecutorLogPipeline(
        settings=Settings(max_concurrent_reads=2, slot_wait=0.0, read_timeout=5.0),
        metrics=counted,  # type: ignore[arg-type]
        clock=clock,
        policy=PassThrough(),  # each read reaches the bulkhead (none is answered from memory)
    )

    def reader(executor: Any, ti: Any, try_number: int, context: Any) -> Any:
        return ["from the reader"], [iter(["a", "b"]), iter(["c"])]

    pipeline.register(BulkheadExecutor, reader)
    return pipeline


def _read(pipeline: ExecutorLogPipeline) -> tuple[list[str], list[Any]]:
    return pipeline.read_streaming(fake_ti(f"{__name__}.BulkheadExecutor"), 1)


def _is_busy(answer: tuple[list[str], list[Any]]) -> bool:
    messages, streams = answer
    lines = [line for stream in streams for line in stream]
    if messages != [BUSY] or len(lines) != 1:
        return False
    event = json.loads(lines[0])
    return (event["event"], event["level"]) == (BUSY_LINE, "warning")


def test_the_read_beyond_k_is_refused_with_its_message(
    pipeline: ExecutorLogPipeline, counted: RecordingMetrics
) -> None:
    first, second = _read(pipeline), _read(pipeline)  # two streamed answers, not yet read
    assert first[0] == second[0] == ["from the reader"]
    assert pipeline.bulkhead.in_use == 2
    assert _is_busy(_read(pipeline))
    assert counted.count(metrics.BULKHEAD_REFUSALS) == 1
    messages, logs = pipeline.read(fake_ti(f"{__name__}.BulkheadExecutor"), 1)
    assert messages == [BUSY]
    assert [json.loads(line)["event"] for line in logs] == [BUSY_LINE]


def test_a_slot_is_freed_when_the_answer_is_read(pipeline: ExecutorLogPipeline) -> None:
    _, streams = _read(pipeline)
    held = _read(pipeline)
    assert [list(stream) for stream in streams] == [["a", "b"], ["c"]]
    assert pipeline.bulkhead.in_use == 1
    assert _read(pipeline)[0] == ["from the reader"]
    assert held[0] == ["from the reader"]  # a real answer, whose stream still holds its slot


def test_a_slot_is_freed_when_the_consumer_stops_early(pipeline: ExecutorLogPipeline) -> None:
    _, streams = _read(pipeline)
    held = _read(pipeline)
    assert next(streams[0]) == "a"
    for stream in streams:
        stream.close()  # core stops reading: the client went away
    assert pipeline.bulkhead.in_use == 1
    assert not _is_busy(_read(pipeline))
    assert held[0] == ["from the reader"]  # a real answer, whose stream still holds its slot


def test_a_slot_is_freed_when_the_answer_is_dropped_unread(pipeline: ExecutorLogPipeline) -> None:
    _read(pipeline)  # answer dropped at once
    _read(pipeline)
    assert pipeline.bulkhead.in_use == 0


def test_a_slot_is_freed_by_the_deadline(pipeline: ExecutorLogPipeline, clock: FakeClock) -> None:
    held = [_read(pipeline), _read(pipeline)]
    assert _is_busy(_read(pipeline))
    clock.advance(5.0)  # both reads are past their deadline, their streams still open
    assert not _is_busy(_read(pipeline))
    assert [messages for messages, _ in held] == [["from the reader"]] * 2


def test_list_form_reads_release_at_once(pipeline: ExecutorLogPipeline) -> None:
    for _ in range(5):
        assert pipeline.read(fake_ti(f"{__name__}.BulkheadExecutor"), 1) == (["from the reader"], ["a\nb", "c"])
    assert pipeline.bulkhead.in_use == 0


def test_a_waiting_read_gets_a_slot_freed_within_its_wait() -> None:
    pipeline = ExecutorLogPipeline(settings=Settings(max_concurrent_reads=1, slot_wait=30.0), policy=PassThrough())
    release = threading.Event()

    def reader(executor: Any, ti: Any, try_number: int, context: Any) -> Any:
        return ["m"], [iter(["x"])]

    pipeline.register(BulkheadExecutor, reader)
    _, held = _read(pipeline)
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(_read(pipeline)))
    waiting.start()
    release.wait(0.05)  # the second read is waiting for the slot
    assert not answers
    held[0].close()
    waiting.join(10)
    assert answers[0][0] == ["m"]


# ------------------------------------------------------------------ Bulkhead and Slot themselves


def _deadline(clock: FakeClock, seconds: float = 5.0) -> Deadline:
    return Deadline(seconds, clock)


def test_slots_up_to_the_limit_then_none_and_release_is_idempotent(clock: FakeClock) -> None:
    bulkhead = Bulkhead(clock)
    first, second = (bulkhead.acquire(2, 0.0, _deadline(clock)) for _ in range(2))
    assert first is not None
    assert second is not None
    assert bulkhead.acquire(2, 0.0, _deadline(clock)) is None
    first.release()
    first.release()  # a second release frees nothing more
    assert bulkhead.in_use == 1
    assert bulkhead.acquire(2, 0.0, _deadline(clock)) is not None
    assert bulkhead.acquire(2, 0.0, _deadline(clock)) is None


def test_a_slot_past_its_deadline_no_longer_counts(clock: FakeClock) -> None:
    bulkhead = Bulkhead(clock)
    bulkhead.acquire(1, 0.0, _deadline(clock, 2.0))
    assert bulkhead.acquire(1, 0.0, _deadline(clock, 2.0)) is None
    clock.advance(2.0)
    assert bulkhead.in_use == 0
    assert bulkhead.acquire(1, 0.0, _deadline(clock)) is not None


def test_held_streams_free_the_slot_when_the_last_one_ends(clock: FakeClock) -> None:
    bulkhead = Bulkhead(clock)
    slot = bulkhead.acquire(1, 0.0, _deadline(clock))
    assert slot is not None
    first, second = slot.hold_until_read([iter(["a"]), iter(["b", "c"])])
    assert list(first) == ["a"]
    assert bulkhead.in_use == 1
    assert next(second) == "b"
    assert bulkhead.in_use == 1
    assert list(second) == ["c"]
    assert bulkhead.in_use == 0


def test_no_streams_free_the_slot_at_once(clock: FakeClock) -> None:
    bulkhead = Bulkhead(clock)
    slot = bulkhead.acquire(1, 0.0, _deadline(clock))
    assert slot is not None
    assert slot.hold_until_read([]) == []
    assert bulkhead.in_use == 0


def test_a_stream_that_raises_frees_the_slot_and_closing_closes_the_source(clock: FakeClock) -> None:
    closed: list[str] = []

    def source() -> Iterator[str]:
        try:
            yield "a"
            raise OSError("connection reset")
        finally:
            closed.append("source")

    bulkhead = Bulkhead(clock)
    slot = bulkhead.acquire(1, 0.0, _deadline(clock))
    assert slot is not None
    (stream,) = slot.hold_until_read([source()])
    assert next(stream) == "a"
    with pytest.raises(OSError, match="connection reset"):
        next(stream)
    assert (closed, bulkhead.in_use) == (["source"], 0)

    slot = bulkhead.acquire(1, 0.0, _deadline(clock))
    assert slot is not None
    (stream,) = slot.hold_until_read([source()])
    assert next(stream) == "a"
    stream.close()  # type: ignore[attr-defined]
    assert (closed, bulkhead.in_use) == (["source", "source"], 0)


def test_a_stream_dropped_unread_frees_the_slot(clock: FakeClock) -> None:
    bulkhead = Bulkhead(clock)
    slot = bulkhead.acquire(1, 0.0, _deadline(clock))
    assert slot is not None
    streams = slot.hold_until_read([iter(["a"])])
    del streams
    gc.collect()
    assert bulkhead.in_use == 0
