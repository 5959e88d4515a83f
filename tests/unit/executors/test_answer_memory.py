"""The answer memory: answers reused within answer_ttl, the last good lines kept and shown when a read fails."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from freezegun import freeze_time

from airflow_executor_logs import metrics as metric_names
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.answer_memory import AnswerMemory
from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.reader_protocol import (
    Notice,
    Outcome,
    ReadReport,
    TextStream,
    TextStreams,
    to_task_log,
)
from airflow_executor_logs.metrics import RecordingMetrics
from airflow_executor_logs_testing.kube_client import FakeClock

KEY = ReadKey("a.KubernetesExecutor", "dag", "task", "run", -1, 1)
TIMEOUT_DETAIL = "Reading from k8s pod logs timed out after 5 s ([executor_logs] read_timeout)"
TIMEOUT_SUMMARY = "Kubernetes API timed out (5 s)"
#: How long the reads here may take (the Kubernetes reader's read_timeout).
LASTS = 5.0


class Reads:
    """A reader double: answers what it is told to next, and counts its reads."""

    def __init__(self) -> None:
        self.count = 0
        self.next: Callable[[], Answer] = lambda: good(3)

    def __call__(self) -> Answer:
        self.count += 1
        return self.next()


def good(lines: int, prefix: str = "line") -> Answer:
    """A streamed answer of ``lines`` lines, as the Kubernetes reader gives it."""
    return Answer(["Found logs through kube API"], [iter([f"{prefix} {n}\n" for n in range(lines)])])


def failed(outcome: Outcome, detail: str, summary: str = "", *, retry_in: float | None = None, **kw: Any) -> Answer:
    report = ReadReport()
    report.problem(outcome, detail, summary=summary, retry_in=retry_in, **kw)
    return Answer(["Attempting to fetch logs from pod p through kube API", detail], [], report)


def consume(answer: Answer) -> tuple[list[str], list[str]]:
    return to_task_log(answer.task_log())


def events(answer: Answer) -> list[dict[str, Any]]:
    """The structured lines of an answer's log."""
    _, chunks = consume(answer)
    out = []
    for chunk in chunks:
        for line in chunk.splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def memory(clock: Callable[[], float], **settings: Any) -> AnswerMemory:
    fixed = Settings(**settings)
    return AnswerMemory(lambda: fixed, clock=clock, metrics=RecordingMetrics())


def stood_in(kept: AnswerMemory) -> int:
    """Polls given the previous answer while its refresh was in flight, as counted through the metrics sink."""
    assert isinstance(kept.metrics, RecordingMetrics)
    return kept.metrics.count(metric_names.STAND_INS)


def test_identical_reads_within_answer_ttl_reuse_the_answer(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock, answer_ttl=1.0)
    first = consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(0.9)
    assert consume(kept.answer(KEY, reads, lasts=LASTS)) == first
    assert reads.count == 1
    clock.advance(0.1)
    kept.answer(KEY, reads, lasts=LASTS)
    assert reads.count == 2  # answer_ttl after the first read ended (it took no time here)


def test_a_read_slower_than_answer_ttl_is_reused_from_when_it_ended(clock: FakeClock) -> None:
    """A short-lived executor's read takes seconds: dated from its start, it would never be reused."""
    reads, kept = Reads(), memory(clock, answer_ttl=1.0)

    def slow() -> Answer:
        clock.advance(2.0)
        return good(3)

    reads.next = slow
    first = consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(0.9)
    assert consume(kept.answer(KEY, reads, lasts=LASTS)) == first
    assert reads.count == 1


def test_another_try_or_task_is_not_reused(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock)
    consume(kept.answer(KEY, reads, lasts=LASTS))
    consume(kept.answer(ReadKey("a.KubernetesExecutor", "dag", "task", "run", -1, 2), reads, lasts=LASTS))
    consume(kept.answer(ReadKey("a.KubernetesExecutor", "dag", "other", "run", -1, 1), reads, lasts=LASTS))
    assert reads.count == 3


def test_a_problem_is_reused_within_answer_ttl_too(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock)
    reads.next = lambda: failed(Outcome.TIMEOUT, TIMEOUT_DETAIL, TIMEOUT_SUMMARY)
    first = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert consume(kept.answer(KEY, reads, lasts=LASTS)) == first
    assert reads.count == 1


def test_an_answer_not_read_to_its_end_is_not_kept(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock)
    answer = kept.answer(KEY, reads, lasts=LASTS)
    next(iter(answer.streams[0]))
    answer.streams[0].close()  # type: ignore[attr-defined]  # core stopped early
    kept.answer(KEY, reads, lasts=LASTS)
    assert reads.count == 2


def test_a_timeout_shows_the_last_good_lines_and_says_what_failed_when_and_what_next() -> None:
    with freeze_time("2026-12-04 12:03:11", tz_offset=0) as frozen:
        reads, kept = Reads(), AnswerMemory(lambda: Settings(), clock=time.monotonic)
        reads.next = lambda: good(100)
        assert len([line for line in consume(kept.answer(KEY, reads, lasts=LASTS))[1][0].splitlines() if line]) == 100
        frozen.tick(42)
        reads.next = lambda: failed(Outcome.TIMEOUT, TIMEOUT_DETAIL, TIMEOUT_SUMMARY, retry_in=12.0)
        answer = kept.answer(KEY, reads, lasts=LASTS)
        messages, chunks = consume(answer)
    assert messages[-1] == TIMEOUT_DETAIL + "; showing the lines read at 12:03:11 UTC"  # as the last line says
    lines = [line for line in "\n".join(chunks).splitlines() if line]
    assert lines[:100] == [f"line {n}" for n in range(100)]  # the last good lines, then the warning, last
    warning = json.loads(lines[-1])
    assert warning["event"] == (
        "Kubernetes API timed out (5 s): lines above from 12:03:11 UTC (42 s ago); retry in 12 s"
    )
    assert warning["level"] == "warning"
    assert warning["timestamp"].startswith("2026-12-04T12:03:53")  # stamped now: core sorts it last
    assert len(warning["event"]) <= 130  # the wording the issue asks for, one line in the log view


def test_the_next_attempt_is_at_least_answer_ttl_away(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock, answer_ttl=2.0)
    consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(3)
    reads.next = lambda: failed(Outcome.TIMEOUT, TIMEOUT_DETAIL, TIMEOUT_SUMMARY)
    line = events(kept.answer(KEY, reads, lasts=LASTS))[-1]["event"]
    assert "lines above from " in line
    assert "UTC (3 s ago)" in line
    assert line.endswith(" ago); retry in 2 s")  # a poll within answer_ttl gets this answer again


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            lambda: failed(Outcome.REFUSED, "skipped: the breaker is open", "Kubernetes API down"), id="breaker"
        ),
        pytest.param(lambda: failed(Outcome.REFUSED, "busy", "This API server worker is busy"), id="bulkhead"),
        pytest.param(
            lambda: failed(Outcome.FAILED, "failed: connection refused", "Kubernetes API unreachable", transient=True),
            id="transport",
        ),
    ],
)
def test_refusals_and_transport_failures_show_the_last_good_lines(
    clock: FakeClock, answer: Callable[[], Answer]
) -> None:
    reads, kept = Reads(), memory(clock)
    consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(5)
    reads.next = answer
    messages, chunks = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert chunks[0] == "line 0\n\nline 1\n\nline 2\n"
    assert json.loads(chunks[-1])["level"] == "warning"
    assert "UTC (5 s ago)" in json.loads(chunks[-1])["event"]
    assert messages[-1].startswith(answer().report.detail + "; showing the lines read at ")  # what is shown instead


def test_a_failure_that_is_not_transient_is_an_error_line_without_old_lines(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock)
    consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(5)
    reads.next = lambda: failed(Outcome.FAILED, "Reading from k8s pod logs failed: (403) Forbidden")
    _messages, chunks = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert chunks == [json.dumps(json.loads(chunks[0]))]  # one line: the error, nothing else
    assert json.loads(chunks[0])["event"] == "Reading from k8s pod logs failed: (403) Forbidden"
    assert json.loads(chunks[0])["level"] == "error"


def test_without_earlier_lines_a_problem_is_still_a_line_at_the_end(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock)
    reads.next = lambda: failed(Outcome.TIMEOUT, TIMEOUT_DETAIL, TIMEOUT_SUMMARY)
    messages, chunks = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert f"{TIMEOUT_DETAIL}; no earlier lines to show" in messages  # the source message says it too
    assert [json.loads(chunk)["event"] for chunk in chunks] == [
        f"{TIMEOUT_SUMMARY}: no earlier lines to show; retry in 1 s"
    ]


def test_lines_older_than_stale_lines_ttl_are_not_shown(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock, stale_lines_ttl=60.0)
    consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(60)
    reads.next = lambda: failed(Outcome.TIMEOUT, TIMEOUT_DETAIL, TIMEOUT_SUMMARY)
    _, chunks = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert len(chunks) == 1
    assert len(kept.lines) == 0


def test_the_memory_is_bounded_by_bytes_least_recently_used_first_out(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock, stale_lines_max_bytes=64 * 1024, answer_ttl=0.001)
    reads.next = lambda: good(20)
    keys = [ReadKey("a.K", "dag", f"task-{n}", "run", -1, 1) for n in range(100)]
    for key in keys[:10]:
        consume(kept.answer(key, reads, lasts=LASTS))
    clock.advance(1)
    kept.lines.get(keys[0], 600)  # used again: kept longest
    for key in keys[10:]:
        consume(kept.answer(key, reads, lasts=LASTS))
        assert kept.lines.bytes <= 64 * 1024
    assert 0 < len(kept.lines) < 100
    assert kept.lines.get(keys[1], 600) is None  # least recently used: out
    assert kept.lines.get(keys[-1], 600) is not None


def test_a_large_answer_within_the_bound_is_kept_and_reused(clock: FakeClock) -> None:
    """10,000 lines (``running_pod_log_lines``) are one answer: reused within answer_ttl, kept for a problem."""
    reads, kept = Reads(), memory(clock, answer_ttl=1.0)  # the default bound, 8 MiB
    reads.next = lambda: good(10_000, "x" * 190)
    first = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert len([line for line in first[1][0].splitlines() if line]) == 10_000
    clock.advance(0.5)
    assert consume(kept.answer(KEY, reads, lasts=LASTS)) == first
    assert reads.count == 1  # 2 when an answer over 512 KiB was never kept
    clock.advance(5)
    reads.next = lambda: failed(Outcome.TIMEOUT, TIMEOUT_DETAIL, TIMEOUT_SUMMARY)
    _, chunks = consume(kept.answer(KEY, reads, lasts=LASTS))
    shown = [line for chunk in chunks for line in chunk.splitlines() if line]
    assert len(shown) == 10_001  # the last good lines, then the warning


def test_a_streamed_read_larger_than_the_bound_is_not_kept_and_stops_being_buffered(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock, stale_lines_max_bytes=32 * 1024, answer_ttl=1.0)
    consume(kept.answer(KEY, reads, lasts=LASTS))
    assert len(kept.lines) == 1
    clock.advance(1.5)
    reads.next = lambda: good(1000, "a longer line, one of many")
    answer = kept.answer(KEY, reads, lasts=LASTS)
    recording = answer.streams[0].gi_frame.f_locals["recording"]  # type: ignore[attr-defined]
    consume(answer)
    assert recording.parts is None  # nothing was buffered past the bound
    assert kept.lines.reusable(KEY, 10) is None  # the older lines are not the last ones served: never reused
    reads.next = lambda: failed(Outcome.TIMEOUT, TIMEOUT_DETAIL, TIMEOUT_SUMMARY)
    _, chunks = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert "line 2" in chunks[0]  # but still shown, with their time, under a warning


def test_a_stream_cut_by_a_problem_is_not_kept(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock)

    def cut() -> Answer:
        report = ReadReport()

        def lines() -> Iterator[str]:
            yield "first\n"
            report.problem(Outcome.TIMEOUT, "cut", summary="cut")
            yield Notice("cut")

        return Answer(["m"], [lines()], report)

    reads.next = cut
    consume(kept.answer(KEY, reads, lasts=LASTS))
    assert len(kept.lines) == 0


def test_an_answer_in_the_list_form_is_kept_and_given_back_as_it_came(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock)
    reads.next = lambda: Answer(["listed"], TextStreams([TextStream("a\nb"), TextStream("c")]))
    first = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert first == (["listed"], ["a\nb", "c"])
    assert consume(kept.answer(KEY, reads, lasts=LASTS)) == first
    clock.advance(2)
    reads.next = lambda: failed(Outcome.TIMEOUT, "timed out", "Short-lived X not answering")
    _, chunks = consume(kept.answer(KEY, reads, lasts=LASTS))
    assert chunks[:2] == ["a\nb", "c"]
    assert "UTC (2 s ago)" in json.loads(chunks[2])["event"]


def test_a_read_arriving_while_an_identical_one_is_in_flight_waits_for_its_answer(clock: FakeClock) -> None:
    import threading

    reads, kept = Reads(), memory(clock, answer_ttl=30.0)
    release, entered = threading.Event(), threading.Event()

    def slow() -> Answer:
        entered.set()
        release.wait(30)
        return good(3)

    reads.next = slow
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(consume(kept.answer(KEY, reads, lasts=LASTS))))
    first.start()
    entered.wait(30)
    second = threading.Thread(target=lambda: answers.append(consume(kept.answer(KEY, reads, lasts=LASTS))))
    second.start()
    release.set()
    first.join(30)
    second.join(30)
    assert reads.count == 1  # the second waited for the first answer instead of reading again
    assert answers[0] == answers[1]


def test_an_answer_never_read_to_its_end_holds_later_reads_once_at_most(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock, answer_ttl=0.05)
    abandoned = kept.answer(KEY, reads, lasts=LASTS)  # its stream is never read: nothing is kept
    consume(kept.answer(KEY, reads, lasts=LASTS))  # waits up to answer_ttl for it, then reads
    consume(kept.answer(KEY, reads, lasts=LASTS))  # reused: the first answer no longer holds anyone up
    assert reads.count == 2
    assert abandoned.streams


class SlowRefresh:
    """A read that blocks until released, with the lines it will answer; ``entered`` is set once it started."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self) -> Answer:
        self.entered.set()
        self.release.wait(30)
        return good(3, self.prefix)


def refresh_in_thread(kept: AnswerMemory, reads: Reads, slow: SlowRefresh) -> tuple[threading.Thread, list[Any]]:
    """Start a poll whose read is ``slow``, in a thread; returns once that read is in flight."""
    reads.next = slow
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(consume(kept.answer(KEY, reads, lasts=LASTS))))
    thread.start()
    assert slow.entered.wait(30)
    return thread, answers


def test_while_people_watch_a_refresh_in_flight_the_previous_answer_stands_in(clock: FakeClock) -> None:
    """Stale while revalidate: a slow read (a short-lived executor) holds up only the poll that started it."""
    reads, kept = Reads(), memory(clock, answer_ttl=1.0)
    reads.next = lambda: good(3, "old")
    previous = consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(1.5)  # past answer_ttl, within two: people are still watching
    slow = SlowRefresh("new")
    refresh, refreshed = refresh_in_thread(kept, reads, slow)
    try:
        started = time.monotonic()
        assert consume(kept.answer(KEY, reads, lasts=LASTS)) == previous  # at once, not after the refresh
        assert consume(kept.answer(KEY, reads, lasts=LASTS)) == previous
        assert time.monotonic() - started < 5
        assert stood_in(kept) == 2
    finally:
        slow.release.set()
        refresh.join(30)
    assert reads.count == 2
    assert "new 2" in refreshed[0][1][0]
    assert refreshed[0] != previous
    assert consume(kept.answer(KEY, reads, lasts=LASTS)) == refreshed[0]  # the refresh landed: its answer from now on


def test_after_a_pause_polls_wait_for_the_refresh_instead_of_an_old_answer(clock: FakeClock) -> None:
    reads, kept = Reads(), memory(clock, answer_ttl=30.0)
    reads.next = lambda: good(3, "old")
    consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(60)  # nobody watched for two answer_ttl: the old answer is not shown as current
    slow = SlowRefresh("new")
    refresh, refreshed = refresh_in_thread(kept, reads, slow)
    waiting: list[Any] = []
    poll = threading.Thread(target=lambda: waiting.append(consume(kept.answer(KEY, reads, lasts=LASTS))))
    poll.start()
    poll.join(0.2)
    assert poll.is_alive()  # waits for the refresh
    slow.release.set()
    refresh.join(30)
    poll.join(30)
    assert waiting == refreshed
    assert reads.count == 2
    assert stood_in(kept) == 0


@pytest.mark.parametrize(
    ("lasts", "reader"), [(5.0, "Kubernetes: read_timeout"), (30.0, "short-lived executor: fallback_timeout")]
)
def test_an_answer_never_read_to_its_end_stands_in_no_longer_than_its_reader_may_take(
    clock: FakeClock, lasts: float, reader: str
) -> None:
    reads, kept = Reads(), memory(clock, answer_ttl=0.05, read_timeout=5.0, fallback_timeout=30.0)
    reads.next = lambda: good(3, "old")
    previous = consume(kept.answer(KEY, reads, lasts=lasts))
    clock.advance(0.06)
    reads.next = lambda: good(3, "new")
    abandoned = kept.answer(KEY, reads, lasts=lasts)  # its stream is never read: it stays in flight
    clock.advance(lasts - 0.01)
    assert consume(kept.answer(KEY, reads, lasts=lasts)) == previous, reader  # stands in meanwhile
    clock.advance(0.02)  # past the longest its reader may take (it was the larger of both for every reader)
    fresh = consume(kept.answer(KEY, reads, lasts=lasts))  # waits answer_ttl for it at most, then reads
    assert fresh != previous
    assert reads.count == 3
    assert abandoned.streams


def test_a_stand_in_is_never_older_than_an_answer_this_worker_served(clock: FakeClock) -> None:
    """The answer kept last stands in, not the one kept when the refresh began; nor one a later answer retired."""
    reads, kept = Reads(), memory(clock, answer_ttl=1.0)
    reads.next = lambda: good(3, "old")
    consume(kept.answer(KEY, reads, lasts=LASTS))
    clock.advance(1.2)
    reads.next = lambda: good(4, "cut")
    cut = kept.answer(KEY, reads, lasts=LASTS)  # read only partly, then closed: served, not kept
    next(iter(cut.streams[0]))
    cut.streams[0].close()  # type: ignore[attr-defined]
    slow = SlowRefresh("new")
    refresh, refreshed = refresh_in_thread(kept, reads, slow)
    waiting: list[Any] = []
    poll = threading.Thread(target=lambda: waiting.append(consume(kept.answer(KEY, reads, lasts=LASTS))))
    poll.start()
    try:
        poll.join(0.2)
        assert poll.is_alive()  # it waits for the refresh instead of going back in time
    finally:
        slow.release.set()  # the refresh answers now, not when SlowRefresh gives up waiting (30 s)
        refresh.join(30)
        poll.join(30)
    assert "old" not in waiting[0][1][0]
    assert waiting == refreshed
    assert stood_in(kept) == 0
