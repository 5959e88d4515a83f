"""
What one worker process remembers of the answers it served, and how a failed read is answered.

:class:`AnswerMemory` is the pipeline's default answer policy. Per :class:`~.answers.ReadKey` (executor,
task instance, try) it keeps:

* the last good lines (:class:`LastGoodLines`): bounded by bytes, least recently used first out, each
  entry for ``stale_lines_ttl`` seconds. A streamed answer is teed into a buffer as core reads it; a read
  larger than a sixteenth of the bound is not kept, so a streamed read keeps its flat memory;
* the last answer, reused for identical reads within ``answer_ttl`` seconds, whatever reader gave it:
  however many people watch a task, a worker reads it at most once per ``answer_ttl``.

Every problem answer leaves here with the problem as a source message (so core does not go on to the
worker's served logs, see :func:`problem_answer`) and as one line at the end of the log, with a level
the UI colours. A transient problem (a timeout, a refusal, a transport failure) shows the last good
lines above it: "Kubernetes API timed out (5 s): lines above from 12:03:11 UTC (42 s ago); retry in 1 s".
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.reader_protocol import (
    LogStream,
    Notice,
    Outcome,
    ReadReport,
    TextStream,
    TextStreams,
    notice,
    utc_now,
)

if TYPE_CHECKING:
    from airflow_executor_logs.config import Settings

__all__ = ["AnswerMemory", "LastGoodLines", "Remembered", "problem_line"]

#: The share of ``stale_lines_max_bytes`` one read may take; a larger read is not kept.
ENTRY_SHARE = 16
#: Bytes counted per entry besides its text: the entry, its key and its place in the dict.
ENTRY_OVERHEAD = 512
#: Bytes counted per remembered line besides the string: its slot in the list.
LINE_OVERHEAD = 8
#: At most this many problem answers are remembered for reuse (each lives ``answer_ttl`` seconds).
MAX_RECENT_PROBLEMS = 4096
#: Characters a problem line is cut to: with the UI's timestamp and level before it, it fits a 1,400 px window.
LINE_WIDTH = 95


@dataclass(frozen=True)
class Remembered:
    """One answer kept: its messages and lines, and when its read started (wall clock and monotonic)."""

    messages: tuple[str, ...]
    #: The lines of each stream; or, for an answer in the list form (``as_text``), each chunk's text.
    streams: tuple[tuple[str, ...], ...]
    as_text: bool
    lines: int
    size: int
    read_at: datetime
    read_mono: float
    #: When the read ended (``time.monotonic()``): answers are reused for ``answer_ttl`` from then, so a
    #: read slower than ``answer_ttl`` (a short-lived executor) is still reused. ``None``: at ``read_mono``.
    landed_mono: float | None = None

    @property
    def landed(self) -> float:
        return self.read_mono if self.landed_mono is None else self.landed_mono

    def replay(self, *extra: str) -> tuple[list[str], list[LogStream]]:
        """The kept answer again, with ``extra`` lines after it (a line of their own each)."""
        if self.as_text:
            chunks = [TextStream(chunk[0]) for chunk in self.streams if chunk]
            return list(self.messages), TextStreams([*chunks, *(TextStream(line) for line in extra)])
        streams: list[LogStream] = [iter(lines) for lines in self.streams]
        if extra:
            streams.append(iter(extra))
        return list(self.messages), streams


class LastGoodLines:
    """Remembered answers by key, bounded by bytes (least recently used first out); thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: OrderedDict[ReadKey, Remembered] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def get(self, key: ReadKey, ttl: float, *, drop: bool = True) -> Remembered | None:
        """The entry of ``key`` read less than ``ttl`` seconds ago; an older one is dropped if ``drop``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() - entry.read_mono >= ttl:
                if drop:
                    self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry

    def reusable(self, key: ReadKey, ttl: float) -> Remembered | None:
        """The entry of ``key`` if its read ended less than ``ttl`` seconds ago (it is kept either way)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._clock() - entry.landed >= ttl:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: ReadKey, entry: Remembered, max_bytes: int) -> None:
        """Keep ``entry`` for ``key`` (replacing the one before), then evict down to ``max_bytes``."""
        with self._lock:
            self._drop(key)
            self._entries[key] = entry
            self.bytes += entry.size
            while self.bytes > max_bytes and self._entries:
                self._drop(next(iter(self._entries)))

    def discard(self, key: ReadKey) -> None:
        with self._lock:
            self._drop(key)

    def expire(self, ttl: float) -> None:
        """Drop every entry read ``ttl`` seconds ago or earlier."""
        with self._lock:
            now = self._clock()
            for key in [key for key, entry in self._entries.items() if now - entry.read_mono >= ttl]:
                self._drop(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _drop(self, key: ReadKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size


class AnswerMemory:
    """
    The default answer policy: reuse an answer within ``answer_ttl``, keep the last good lines, and answer
    a problem with them and a line saying what failed.

    :param settings: the settings in force (read on every answer: options change without a restart).
    :param clock: the monotonic clock (ages, TTLs); ``wall``: the UTC wall clock (the "read at" time).
    """

    #: Seconds between sweeps of expired entries (they are also dropped when looked up).
    SWEEP_EVERY = 10.0

    def __init__(
        self,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._wall = wall
        self.lines = LastGoodLines(clock)
        self._problems: OrderedDict[ReadKey, tuple[float, Remembered]] = OrderedDict()
        self._reading: dict[ReadKey, threading.Event] = {}
        self._lock = threading.Lock()
        self._swept = clock()
        #: Answers given without reading (reused within ``answer_ttl``), for tests and diagnostics.
        self.reused = 0

    def answer(self, key: ReadKey, read: Callable[[], Answer]) -> Answer:
        settings = self._settings()
        now = self._clock()
        self._sweep(now, settings)
        recent = self._recent(key, now, settings.answer_ttl)
        if recent is not None:
            return recent
        done = self._in_flight(key, settings.answer_ttl)
        if done is None:  # an identical read was in flight and has answered: reuse its answer
            recent = self._recent(key, self._clock(), settings.answer_ttl)
            if recent is not None:
                return recent
            done = threading.Event()  # it kept nothing (cut, too large): read, unregistered
        started, started_at = self._clock(), self._wall()
        try:
            answer = read()
        except BaseException:
            self._landed(key, done)
            raise
        if answer.outcome is Outcome.SUCCESS:
            return self._keep(key, answer, started, started_at, settings, lambda: self._landed(key, done))
        try:
            return self._problem(key, answer, settings)
        finally:
            self._landed(key, done)

    def _in_flight(self, key: ReadKey, wait: float) -> threading.Event | None:
        """
        Register this read of ``key`` (its event, set once its answer is kept), or, if an identical read
        is in flight, wait up to ``wait`` s for it and return ``None`` (its answer may then be reused).
        Coalescing shares only requests still open; this also covers the moment between a fetch's end
        and its answer being kept, and readers without coalescing (a short-lived executor).
        """
        with self._lock:
            other = self._reading.get(key)
            if other is None:
                event = self._reading[key] = threading.Event()
                return event
        if other.wait(wait):
            return None
        with self._lock:  # that read's answer was never read to its end: stop waiting for it
            if self._reading.get(key) is other:
                event = self._reading[key] = threading.Event()
                return event
        return threading.Event()

    def _landed(self, key: ReadKey, done: threading.Event) -> None:
        with self._lock:
            if self._reading.get(key) is done:
                del self._reading[key]
        done.set()

    # ------------------------------------------------------------------ reuse within answer_ttl

    def _recent(self, key: ReadKey, now: float, ttl: float) -> Answer | None:
        with self._lock:
            problem = self._problems.get(key)
            if problem is not None and now - problem[0] >= ttl:
                del self._problems[key]
                problem = None
        if problem is not None:
            report = ReadReport()
            report.problem(Outcome.REFUSED, "reused", transient=True)  # the answer is a problem's: never kept
            messages, streams = problem[1].replay()
            with self._lock:
                self.reused += 1
            return Answer(messages, streams, report)
        good = self.lines.reusable(key, ttl)
        if good is None:
            return None
        with self._lock:
            self.reused += 1
        messages, streams = good.replay()
        return Answer(messages, streams)

    def _sweep(self, now: float, settings: Settings) -> None:
        with self._lock:
            while self._problems:
                key, (at, _) = next(iter(self._problems.items()))
                if now - at < settings.answer_ttl and len(self._problems) <= MAX_RECENT_PROBLEMS:
                    break
                del self._problems[key]
            if now - self._swept < self.SWEEP_EVERY:
                return
            self._swept = now
        self.lines.expire(settings.stale_lines_ttl)

    # ------------------------------------------------------------------ keeping good answers

    def _keep(
        self,
        key: ReadKey,
        answer: Answer,
        started: float,
        started_at: datetime,
        settings: Settings,
        landed: Callable[[], None],
    ) -> Answer:
        limit = settings.stale_lines_max_bytes // ENTRY_SHARE
        recording = _Recording(self, key, answer, started, started_at, settings, landed)
        if isinstance(answer.streams, TextStreams):
            chunks = [stream.text for stream in answer.streams if isinstance(stream, TextStream)]
            recording.expect(len(chunks), limit)
            for index, chunk in enumerate(chunks):
                recording.add(index, chunk, lines=len(chunk.splitlines()))
            recording.finish(as_text=True, limit=limit)
            return answer
        if not answer.streams:
            recording.expect(0, limit)
            recording.finish(as_text=False, limit=limit)
            return answer
        recording.expect(len(answer.streams), limit)
        streams = [_tee(stream, index, recording) for index, stream in enumerate(answer.streams)]
        return Answer(answer.messages, streams, answer.report)

    def _remember(self, key: ReadKey, entry: Remembered | None, settings: Settings) -> None:
        if entry is None:
            self.lines.discard(key)  # too large to keep: older lines would not be the last ones served
        else:
            self.lines.put(key, entry, settings.stale_lines_max_bytes)

    # ------------------------------------------------------------------ answering problems

    def _problem(self, key: ReadKey, answer: Answer, settings: Settings) -> Answer:
        report = answer.report
        now, at = self._clock(), self._wall()
        stale = self.lines.get(key, settings.stale_lines_ttl) if report.transient else None
        retry = max(report.retry_in or 0.0, settings.answer_ttl) if report.transient else None
        line = notice(problem_line(report, stale, now, retry), "warning" if report.transient else "error", at=at)
        answered = problem_answer(answer, line, stale)
        kept = Remembered(  # reused within answer_ttl as it was given: the stale lines, then the line
            messages=tuple(answered.messages),
            streams=(*(stale.streams if stale else ()), (line,)),
            as_text=stale.as_text if stale else True,
            lines=0,
            size=0,
            read_at=at,
            read_mono=now,
        )
        with self._lock:
            self._problems[key] = (now, kept)
            self._problems.move_to_end(key)
        return answered


def problem_answer(answer: Answer, line: str, stale: Remembered | None) -> Answer:
    """
    ``answer``'s problem as core should show it: a source message, and ``line`` (a rendered notice) last
    in the log, after ``stale``'s lines if any.

    The source message matters for more than the log source details: core reads the worker's served
    logs only when the executor answered no source message. For our own failures that read is wrong:
    the executor has a log source of its own (it has a class-level reader, or overrides
    ``get_task_log``), so the served logs would add an error that misleads (a Kubernetes pod's host
    name does not resolve from the API server: "Could not read served logs: ... NameResolutionError").
    """
    report = answer.report
    messages = list(answer.messages)
    if report.detail and report.detail not in messages:
        messages.append(report.detail)
    if stale is None:
        return Answer(messages, TextStreams([TextStream(line)]), report)
    _, streams = stale.replay(line)
    return Answer(messages, streams, report)


def problem_line(report: ReadReport, stale: Remembered | None, now: float, retry_in: float | None) -> str:
    """
    The one line that says a problem: what failed, the lines shown instead (if any), the next attempt.

    At most :data:`LINE_WIDTH` characters, so that, after the UI's timestamp and level, it fits the log
    panel of a laptop-sized window (checked in a real browser): what failed is shortened, never the rest.
    """
    tail = ""
    if stale is not None:
        tail += f": lines above from {stale.read_at:%H:%M:%S} UTC ({_age(now - stale.read_mono)} ago)"
    if retry_in is not None:
        tail += f"; retry in {max(math.ceil(retry_in - 0.05), 1)} s"
    head = report.summary or report.detail
    room = max(LINE_WIDTH - len(tail), 24)
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + tail


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


class _Recording:
    """What an answer's streams yielded, kept once all of them ended with the read a success and within bounds."""

    def __init__(
        self,
        memory: AnswerMemory,
        key: ReadKey,
        answer: Answer,
        started: float,
        started_at: datetime,
        settings: Settings,
        landed: Callable[[], None],
    ) -> None:
        self._memory, self._key, self._answer, self._settings = memory, key, answer, settings
        self._landed: Callable[[], None] | None = landed
        self._open = 0
        self._started, self._started_at = started, started_at
        self.parts: list[list[str]] | None = []
        self.size = ENTRY_OVERHEAD + sum(sys.getsizeof(message) for message in answer.messages)
        self.lines = 0
        self.spoiled = False
        self._limit = 0
        self._left = 0
        self._lock = threading.Lock()

    def expect(self, streams: int, limit: int) -> None:
        self.parts = [[] for _ in range(streams)]
        self._left, self._limit, self._open = streams, limit, streams

    def closed(self) -> None:
        """One stream is done (read to its end, closed or dropped); after the last, identical reads go on."""
        with self._lock:
            self._open -= 1
            if self._open > 0:
                return
        self._land()

    def _land(self) -> None:
        with self._lock:
            landed, self._landed = self._landed, None
        if landed is not None:
            landed()

    def add(self, index: int, line: str, lines: int = 1) -> None:
        with self._lock:
            if self.parts is None:
                return
            if isinstance(line, Notice):  # a problem met while streaming: these are not all good lines
                self.parts = None
                self.spoiled = True
                return
            self.size += sys.getsizeof(line) + LINE_OVERHEAD
            self.lines += lines
            if self.size > self._limit:
                self.parts = None  # over the bound: stop keeping, memory stays flat
                return
            if index < len(self.parts):
                self.parts[index].append(line)

    def ended(self) -> None:
        """One stream read to its end; the last one keeps the answer."""
        with self._lock:
            self._left -= 1
            if self._left:
                return
        self.finish(as_text=False, limit=self._limit)

    def finish(self, *, as_text: bool, limit: int) -> None:
        try:
            self._finish(as_text=as_text, limit=limit)
        finally:
            self._land()

    def _finish(self, *, as_text: bool, limit: int) -> None:
        if self._answer.outcome is not Outcome.SUCCESS or self.spoiled:
            return  # cut or failed mid-stream: these are not good lines
        if self.lines == 0 and not self._answer.messages:
            return
        entry = None
        if self.parts is not None and self.size <= limit:
            entry = Remembered(
                messages=tuple(self._answer.messages),
                streams=tuple(tuple(part) for part in self.parts),
                as_text=as_text,
                lines=self.lines,
                size=self.size,
                read_at=self._started_at,
                read_mono=self._started,
                landed_mono=self._memory._clock(),
            )
        self._memory._remember(self._key, entry, self._settings)


def _tee(stream: LogStream, index: int, recording: _Recording) -> Iterator[str]:
    """``stream``'s lines, each also given to ``recording``; closing it closes ``stream``."""
    try:
        for line in stream:
            recording.add(index, line)
            yield line
        recording.ended()
    finally:
        try:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        finally:
            recording.closed()
