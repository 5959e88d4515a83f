"""Identical concurrent reads share one Kubernetes request; each waiter keeps its own deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.reader_protocol import ReadContext, to_task_log
from airflow_executor_logs.executors.resilience.coalescing import READ_AHEAD, Coalescer
from airflow_executor_logs.executors.resilience.deadline import Deadline, ReadDeadlineExceeded
from tests.support.kube_double import Kube, kube
from tests.support.task_instances import fake_ti

LINES = [f"line {n}" for n in range(50)]


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "condition not reached"
        threading.Event().wait(0.001)


def _real_time_kube() -> Kube:
    """Waiters wait on each other in real time: the double's clock only starts each read's deadline."""
    k = kube()
    k.clock = time.monotonic  # type: ignore[assignment]
    return k


def _context(k: Kube, seconds: float) -> ReadContext:
    return ReadContext(deadline=Deadline(seconds), settings=k.settings, metrics=k.metrics)  # type: ignore[arg-type]


def _in_threads(count: int, read: Callable[[], Any]) -> tuple[list[threading.Thread], list[Any]]:
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(read())) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, answers


def test_concurrent_identical_reads_share_one_request_and_get_identical_answers() -> None:
    k = _real_time_kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    gate = k.api.hold("list")
    threads, answers = _in_threads(5, lambda: to_task_log(k.reader(k.executor(), ti, 1, _context(k, 10))))
    try:
        _until(lambda: k.metrics.count(metrics.COALESCED_READS) == 4)  # four joined the first one's request
    finally:
        gate.set()
        for thread in threads:
            thread.join(10)
    assert len(answers) == 5
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0][-1] == "Found logs through kube API"
    assert [call.route for call in k.api.calls] == ["list", "log"]
    assert k.reader.coalescer.in_flight() == 0


def test_a_waiter_whose_deadline_passes_leaves_without_cancelling_the_others() -> None:
    k = _real_time_kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    gate = k.api.hold("list")
    (hasty,), hasty_answer = _in_threads(1, lambda: to_task_log(k.reader(k.executor(), ti, 1, _context(k, 0.2))))
    _until(lambda: k.api.count("list") == 1)  # the hasty read started the request
    patient, patient_answers = _in_threads(2, lambda: to_task_log(k.reader(k.executor(), ti, 1, _context(k, 30))))
    try:
        _until(lambda: k.metrics.count(metrics.COALESCED_READS) == 2)
        hasty.join(10)
        assert "timed out after 0.2 s" in hasty_answer[0][0][-1]  # its own deadline, and it left
    finally:
        gate.set()
        for thread in patient:
            thread.join(10)
    expected = (["Attempting to fetch logs from pod worker-pod-1 through kube API", "Found logs through kube API"],)
    for messages, logs in patient_answers:
        assert (messages,) == expected
        assert logs == ["\n".join(f"{line}\n" for line in LINES)]  # as the provider joins them
    assert [call.route for call in k.api.calls] == ["list", "log"]


def test_a_consumer_that_stops_early_does_not_stop_the_others() -> None:
    k = _real_time_kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    gate = k.api.hold("list")
    streamed: list[Any] = []
    threads, _ = _in_threads(2, lambda: streamed.append(k.reader(k.executor(), ti, 1, _context(k, 30))))
    try:
        _until(lambda: k.metrics.count(metrics.COALESCED_READS) == 1)
    finally:
        gate.set()
        for thread in threads:
            thread.join(10)
    (_, (quitter,)), (_, (reader,)) = streamed
    assert next(quitter) == "line 0\n"
    quitter.close()  # the client went away
    assert list(reader) == [f"{line}\n" for line in LINES]
    assert k.api.count() == 2
    _until(lambda: k.api.open_responses == 0)


def test_sequential_reads_do_not_share() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    k.read(ti)
    k.add_pod(ti, [*LINES, "new line"])  # the task logged one more line
    assert k.read(ti)[1][0].endswith("new line\n")  # a fresh request sees the new line
    assert k.metrics.count(metrics.COALESCED_READS) == 0
    assert k.reader.coalescer.in_flight() == 0


def test_different_tries_are_not_shared() -> None:
    k = _real_time_kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["try one"], name="pod-1", try_number=1)
    k.add_pod(ti, ["try two"], name="pod-2", try_number=2)
    gate = k.api.hold("list", times=2)
    threads, answers = _in_threads(1, lambda: to_task_log(k.reader(k.executor(), ti, 1, _context(k, 10))))
    more, more_answers = _in_threads(1, lambda: to_task_log(k.reader(k.executor(), ti, 2, _context(k, 10))))
    try:
        _until(lambda: k.api.count("list") == 2)
    finally:
        gate.set()
        for thread in [*threads, *more]:
            thread.join(10)
    assert answers[0][1] == ["try one\n"]
    assert more_answers[0][1] == ["try two\n"]
    assert k.metrics.count(metrics.COALESCED_READS) == 0


def test_a_forked_child_reads_with_a_pool_of_its_own() -> None:
    import os

    k = _real_time_kube()  # without a pool of its own, the child's read would time out
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    k.read(ti)  # the parent's pool now has a thread
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a read must not wait for a thread that was not forked
        try:
            ok = k.read(ti)[0][-1] == "Found logs through kube API"
            os.write(write_fd, b"ok" if ok else b"wrong")
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        answer = os.read(read_fd, 16)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    assert answer == b"ok"


# ------------------------------------------------------------------ Coalescer and SharedFetch themselves


class Source:
    """An opener of batches that records how often it was opened and whether it was closed."""

    def __init__(self, batches: list[list[str]], gate: threading.Event | None = None) -> None:
        self.batches, self.gate = batches, gate
        self.opened = 0
        self.closed = threading.Event()

    def open(self, deadline: Deadline) -> Iterator[list[str]]:
        self.opened += 1
        if self.gate is not None:
            assert self.gate.wait(10)
        return self._batches()

    def _batches(self) -> Iterator[list[str]]:
        try:
            yield from self.batches
        finally:
            self.closed.set()


def test_a_second_waiter_joins_the_fetch_and_reads_the_same_lines_from_the_first() -> None:
    coalescer: Coalescer[str] = Coalescer()
    source = Source([["a", "b"], ["c"]], gate=threading.Event())
    first, joined = coalescer.start("key", source.open, Deadline(10))
    second = coalescer.join("key", Deadline(10))
    assert (joined, second is not None, coalescer.in_flight()) == (False, True, 1)
    assert second is not None
    source.gate.set()  # type: ignore[union-attr]
    for waiter in (first, second):
        waiter.opened()
        assert list(waiter.lines()) == ["a", "b", "c"]
    assert source.opened == 1
    _until(lambda: coalescer.in_flight() == 0)
    assert coalescer.join("key", Deadline(10)) is None  # a finished fetch takes no one


def test_start_joins_a_fetch_in_flight() -> None:
    coalescer: Coalescer[str] = Coalescer()
    source = Source([["a"]], gate=threading.Event())
    first, _ = coalescer.start("key", source.open, Deadline(10))
    second, joined = coalescer.start("key", source.open, Deadline(10))
    assert joined is True
    source.gate.set()  # type: ignore[union-attr]
    assert [list(waiter.lines()) for waiter in (first, second)] == [["a"], ["a"]]
    assert source.opened == 1


def test_what_opening_raised_is_raised_to_every_waiter() -> None:
    coalescer: Coalescer[str] = Coalescer()
    gate = threading.Event()

    def fails(deadline: Deadline) -> Iterator[list[str]]:
        assert gate.wait(10)
        raise PermissionError("forbidden")

    first, _ = coalescer.start("key", fails, Deadline(10))
    second = coalescer.join("key", Deadline(10))
    assert second is not None
    gate.set()
    for waiter in (first, second):
        with pytest.raises(PermissionError, match="forbidden"):
            waiter.opened()


def test_an_error_while_reading_ends_every_waiters_lines_with_it() -> None:
    coalescer: Coalescer[str] = Coalescer()

    def breaks(deadline: Deadline) -> Iterator[list[str]]:
        yield ["a"]
        raise OSError("connection reset")

    waiter, _ = coalescer.start("key", breaks, Deadline(10))
    waiter.opened()
    lines = waiter.lines()
    assert next(lines) == "a"
    with pytest.raises(OSError, match="connection reset"):
        next(lines)


def test_a_waiter_is_cut_at_its_own_deadline_while_the_source_opens() -> None:
    coalescer: Coalescer[str] = Coalescer()
    source = Source([["a"]], gate=threading.Event())
    hasty, _ = coalescer.start("key", source.open, Deadline(0.05))
    patient = coalescer.join("key", Deadline(10))
    assert patient is not None
    with pytest.raises(ReadDeadlineExceeded):
        hasty.opened()
    source.gate.set()  # type: ignore[union-attr]
    patient.opened()
    assert list(patient.lines()) == ["a"]


def test_the_source_is_closed_when_every_waiter_has_left() -> None:
    coalescer: Coalescer[str] = Coalescer()
    source = Source([[f"line {n}"] for n in range(10_000)])
    waiter, _ = coalescer.start("key", source.open, Deadline(10))
    waiter.opened()
    lines = waiter.lines()
    assert next(lines) == "line 0"
    lines.close()
    assert source.closed.wait(10)
    _until(lambda: coalescer.in_flight() == 0)


def test_the_fetch_reads_only_a_bounded_read_ahead_of_its_waiters() -> None:
    pulled: list[int] = []

    def endless(deadline: Deadline) -> Iterator[list[int]]:
        n = 0
        while True:
            pulled.append(n)
            yield [n]
            n += 1

    coalescer: Coalescer[int] = Coalescer()
    waiter, _ = coalescer.start("key", endless, Deadline(10))
    waiter.opened()
    _until(lambda: len(pulled) >= READ_AHEAD)
    threading.Event().wait(0.05)  # time to read on, if it would
    assert len(pulled) == READ_AHEAD
    lines = waiter.lines()
    assert [next(lines) for _ in range(READ_AHEAD + 10)] == list(range(READ_AHEAD + 10))
    lines.close()


def test_a_fetch_that_dropped_its_first_lines_takes_no_new_waiter() -> None:
    coalescer: Coalescer[int] = Coalescer()
    gate = threading.Event()

    def source(deadline: Deadline) -> Iterator[list[int]]:
        yield list(range(READ_AHEAD))
        assert gate.wait(10)
        yield [READ_AHEAD]

    waiter, _ = coalescer.start("key", source, Deadline(10))
    waiter.opened()
    lines = waiter.lines()
    assert [next(lines) for _ in range(READ_AHEAD)] == list(range(READ_AHEAD))
    assert coalescer.join("key", Deadline(10)) is None  # it would need lines the fetch dropped
    gate.set()
    assert list(lines) == [READ_AHEAD]
