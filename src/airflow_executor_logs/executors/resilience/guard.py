"""
The guard that holds readers to their deadline when they cannot keep it themselves.

A reader that does not keep its own deadline runs on a worker thread of its own. The caller waits at
most until the deadline for the answer and for each line; a reader still blocked then is left to
finish on its thread. So that repeated hangs cannot pile up threads, each reader may have at most
``max_blocked`` such threads at once; beyond that, its reads are refused at once until one returns.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from airflow_executor_logs.executors.reader_protocol import LogStream, Notice, Outcome, ReadReport, TextStreams
from airflow_executor_logs.executors.resilience.deadline import READ_AHEAD, Deadline, ReadDeadlineExceeded, timed_out

T = TypeVar("T")

__all__ = ["ReaderBlocked", "ReaderGuard"]


class ReaderBlocked(RuntimeError):
    """Too many earlier reads of this reader are still blocked past their deadline."""


class ReaderGuard:
    """Runs readers on worker threads and cuts them at their deadline; bounds threads left blocked."""

    def __init__(self, max_blocked: int = 4) -> None:
        self.max_blocked = max_blocked
        self._blocked: dict[str, int] = {}
        self._lock = threading.Lock()

    def blocked(self, reader: str) -> int:
        """How many threads of ``reader`` are still blocked past their read's deadline."""
        with self._lock:
            return self._blocked.get(reader, 0)

    def call(
        self, reader: str, read: Callable[[], T], deadline: Deadline, *, option: str = "read_timeout"
    ) -> _GuardedRead[T]:
        """
        Start ``read()`` on a worker thread; the result waits for its answer. ``option``: the deadline's
        setting, named by a timeout met mid-stream.

        :raises ReaderBlocked: ``reader`` already has ``max_blocked`` threads blocked.
        """
        with self._lock:
            blocked = self._blocked.get(reader, 0)
        if blocked >= self.max_blocked:
            raise ReaderBlocked(
                f"{blocked} earlier reads are still blocked past their deadline; "
                "not starting another until one of them returns"
            )
        guarded = _GuardedRead(self, reader, read, deadline, option)
        guarded.start()
        return guarded

    def _abandoned(self, reader: str) -> None:
        with self._lock:
            self._blocked[reader] = self._blocked.get(reader, 0) + 1

    def _returned(self, reader: str) -> None:
        with self._lock:
            self._blocked[reader] -= 1


class _GuardedRead(Generic[T]):
    """One read on its worker thread: the answer, then lines fetched on demand, all under one deadline."""

    def __init__(
        self, guard: ReaderGuard, reader: str, read: Callable[[], T], deadline: Deadline, option: str = "read_timeout"
    ) -> None:
        self._guard = guard
        self._option = option
        self._reader = reader
        self._read = read
        self.deadline = deadline
        self._cond = threading.Condition()
        self._answered = False
        self._answer: Any = None
        self._error: BaseException | None = None
        self._sources: list[Iterator[str]] = []
        self._buffers: list[deque[str]] = []
        self._ended: list[BaseException | bool] = []  # per stream: False, True (exhausted) or its error
        self._closed: list[bool] = []
        self._report = ReadReport()
        self._requests: deque[int] = deque()
        self._adopted = False  # the caller has said which streams (if any) the worker serves
        self._abandoned = False
        self._busy = False  # the worker is inside reader code
        self._thread = threading.Thread(target=self._work, name=f"executor-logs-reader-{reader}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # ------------------------------------------------------------------ caller side

    def answer(self) -> T:
        """The reader's answer, raising what it raised; :class:`ReadDeadlineExceeded` at the deadline."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._answered, max(self.deadline.left(), 0.0)):
                self._abandon()
                raise ReadDeadlineExceeded(self.deadline.seconds)
            if self._error is not None:
                raise self._error
            return self._answer  # type: ignore[no-any-return]

    def adopt_streams(self, streams: list[LogStream], report: ReadReport | None = None) -> list[LogStream]:
        """
        Hand the answer's streams to the worker; return lazy streams cut at the deadline (problems met
        while streaming go to ``report``). Streams already in memory are returned as they are.
        """
        if isinstance(streams, TextStreams):
            self.finish()
            return streams
        with self._cond:
            self._sources = [iter(stream) for stream in streams]
            self._buffers = [deque() for _ in streams]
            self._ended = [False for _ in streams]
            self._closed = [False for _ in streams]
            self._adopted = True
            self._report = report or ReadReport()
            self._cond.notify_all()
        return [self._stream(index) for index in range(len(streams))]

    def finish(self) -> None:
        """The answer has no streams: let the worker end."""
        with self._cond:
            self._adopted = True
            self._cond.notify_all()

    def _stream(self, index: int) -> Iterator[str]:
        served = 0
        try:
            while True:
                with self._cond:
                    buffer = self._buffers[index]
                    while not buffer and self._ended[index] is False:
                        if index not in self._requests:
                            self._requests.append(index)
                            self._cond.notify_all()
                        left = self.deadline.left()
                        if left <= 0:
                            self._abandon()
                            break
                        self._cond.wait(left)
                    lines = list(buffer)
                    buffer.clear()
                    ended = self._ended[index]
                yield from lines
                served += len(lines)
                if lines:
                    continue
                if ended is True:
                    return
                if isinstance(ended, BaseException):
                    message = f"{self._reader} failed while streaming: {type(ended).__name__}: {ended}"
                    yield Notice(self._report.problem(Outcome.FAILED, message))
                    return
                message = timed_out(self._reader, self.deadline.seconds, served, option=self._option)
                self._report.problem(Outcome.TIMEOUT, message)
                yield Notice(message)
                return
        finally:
            with self._cond:
                self._closed[index] = True
                self._cond.notify_all()

    def _abandon(self) -> None:
        """Called with the lock held: the caller gives up; count the worker as blocked if it is."""
        if self._busy and not self._abandoned:
            self._abandoned = True
            self._guard._abandoned(self._reader)

    # ------------------------------------------------------------------ worker side

    def _work(self) -> None:
        try:
            self._run()
        finally:
            with self._cond:
                self._busy = False
                abandoned = self._abandoned
                self._cond.notify_all()
            if abandoned:
                self._guard._returned(self._reader)

    def _run(self) -> None:
        with self._cond:
            self._busy = True
        try:
            answer = self._read()
        except BaseException as err:
            with self._cond:
                self._error, self._answered = err, True
                self._cond.notify_all()
            return
        with self._cond:
            self._answer, self._answered, self._busy = answer, True, False
            self._cond.notify_all()
        try:
            while (index := self._next_request()) is not None:
                self._fill(index)
        finally:
            for source in self._sources:
                close = getattr(source, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):  # closing a reader's stream must not break anything
                        close()

    def _next_request(self) -> int | None:
        """The next stream the caller wants lines of; ``None`` once every stream is done or at the deadline."""
        with self._cond:
            while True:
                if self._adopted and all(
                    closed or ended is not False for closed, ended in zip(self._closed, self._ended, strict=True)
                ):
                    return None
                left = self.deadline.left()
                if left <= 0:
                    return None  # never enter reader code past the deadline, where nobody would count it
                if self._requests:
                    index = self._requests.popleft()
                    if not self._closed[index]:
                        self._busy = True
                        return index
                    continue
                self._cond.wait(left)

    def _fill(self, index: int) -> None:
        source = self._sources[index]
        try:
            for _ in range(READ_AHEAD):
                line = next(source)
                with self._cond:
                    self._buffers[index].append(line)
                    self._cond.notify_all()
                    if self._closed[index]:
                        break
        except StopIteration:
            with self._cond:
                self._ended[index] = True
        except Exception as err:
            with self._cond:
                self._ended[index] = err
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
