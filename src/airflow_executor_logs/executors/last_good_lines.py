"""
The last good lines of each read: what is kept of a good answer, how it is recorded, and how it is bounded.

A good answer's streams are teed into a :class:`Recording` as core reads them; once every stream has
ended, the answer is kept as one :class:`Remembered` in :class:`LastGoodLines` (bounded by bytes, least
recently used first out). An answer of any size up to the bound (``stale_lines_max_bytes``) is kept; a
larger one, or one cut while streaming, is served but not kept, and retires the entry before it: that
one stays showable under a warning, but is no longer reused or stood in (it is older than what was served).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime

from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.reader_protocol import LogStream, Notice, Outcome, TextStream, TextStreams

__all__ = ["LastGoodLines", "Recording", "Remembered", "recorded"]

#: Bytes counted per entry besides its text and its key's strings: the entry, its tuples, the key object
#: and its place in the dict (``benchmarks/stale_memory.py`` measures the total with tracemalloc).
ENTRY_OVERHEAD = 768
#: Bytes counted per remembered line besides the string: its slot in the list.
LINE_OVERHEAD = 8


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
    #: Still the newest answer this worker served for its key (reused, stands in); ``False`` once a later
    #: answer was served without being kept.
    current: bool = True

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
            if entry is None or not entry.current or self._clock() - entry.landed >= ttl:
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

    def retire(self, key: ReadKey) -> None:
        """A newer answer of ``key`` was served and not kept: its entry is showable, no longer reusable."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.current:
                self._entries[key] = replace(entry, current=False)

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


def key_bytes(key: ReadKey) -> int:
    """The bytes of ``key``'s strings (a run id alone is often 40 to 90 characters)."""
    values = (getattr(key, field.name) for field in fields(key))
    return sum(sys.getsizeof(value) for value in values if isinstance(value, str))


def recorded(answer: Answer, recording: Recording) -> Answer:
    """``answer`` as core should read it, each line also given to ``recording`` (kept once all streams end)."""
    if isinstance(answer.streams, TextStreams):
        chunks = [stream.text for stream in answer.streams if isinstance(stream, TextStream)]
        recording.expect(len(chunks))
        for index, chunk in enumerate(chunks):
            recording.add(index, chunk, lines=len(chunk.splitlines()))
        recording.finish(as_text=True)
        return answer
    if not answer.streams:
        recording.expect(0)
        recording.finish(as_text=False)
        return answer
    recording.expect(len(answer.streams))
    streams = [_tee(stream, index, recording) for index, stream in enumerate(answer.streams)]
    return Answer(answer.messages, streams, answer.report)


class Recording:
    """
    What an answer's streams yielded, kept once all of them ended with the read a success and within bounds.

    :param key: what the read is of (its strings are counted in the entry's size);
    :param started: when the read started (monotonic), ``started_at`` (UTC wall clock);
    :param limit: the bytes one read may take; a larger one is not kept;
    :param keep: called once with the entry to keep, or ``None`` for an answer served but not kept (too
        large, or cut or failed while streaming);
    :param landed: called once when the last stream is done, kept or not (identical reads go on).
    """

    def __init__(
        self,
        answer: Answer,
        *,
        key: ReadKey,
        started: float,
        started_at: datetime,
        limit: int,
        clock: Callable[[], float],
        keep: Callable[[Remembered | None], None],
        landed: Callable[[], None],
    ) -> None:
        self._answer, self._clock, self._keep = answer, clock, keep
        self._landed: Callable[[], None] | None = landed
        self._open = 0
        self._started, self._started_at = started, started_at
        self.parts: list[list[str]] | None = []
        self.size = ENTRY_OVERHEAD + key_bytes(key) + sum(sys.getsizeof(message) for message in answer.messages)
        self.lines = 0
        self.spoiled = False
        self._limit = limit
        self._left = 0
        self._finished = False
        self._lock = threading.Lock()

    def expect(self, streams: int) -> None:
        self.parts = [[] for _ in range(streams)]
        self._left = self._open = streams

    def closed(self) -> None:
        """One stream is done (read to its end, closed or dropped); after the last, identical reads go on."""
        with self._lock:
            self._open -= 1
            if self._open > 0:
                return
            unfinished, self._finished = not self._finished, True
        try:
            if unfinished and self.lines:  # core stopped early: lines were served, and are not kept
                self._keep(None)
        finally:
            self._land()

    def _land(self) -> None:
        with self._lock:
            landed, self._landed = self._landed, None
        if landed is not None:
            landed()

    def add(self, index: int, line: str, lines: int = 1) -> None:
        """
        Record ``line`` of stream ``index``. No lock: one consumer reads an answer's streams (core merges
        them on the request's thread), and the lock is taken when a stream ends or closes.
        """
        parts = self.parts
        if parts is None:
            return
        if type(line) is not str and isinstance(line, Notice):  # a problem met while streaming: not all good lines
            self.parts, self.spoiled = None, True
            return
        self.size += sys.getsizeof(line) + LINE_OVERHEAD
        self.lines += lines
        if self.size > self._limit:
            self.parts = None  # over the bound: stop keeping, memory stays flat
        elif index < len(parts):
            parts[index].append(line)

    def ended(self) -> None:
        """One stream read to its end; the last one keeps the answer."""
        with self._lock:
            self._left -= 1
            if self._left:
                return
        self.finish(as_text=False)

    def finish(self, *, as_text: bool) -> None:
        """All streams are done: keep the answer if it is good lines within bounds, then let reads go on."""
        with self._lock:
            self._finished = True
        try:
            self._finish(as_text=as_text)
        finally:
            self._land()

    def _finish(self, *, as_text: bool) -> None:
        if self.lines == 0 and not self._answer.messages:
            return
        entry = None
        good = self._answer.outcome is Outcome.SUCCESS and not self.spoiled  # not cut or failed mid-stream
        if good and self.parts is not None and self.size <= self._limit:
            entry = Remembered(
                messages=tuple(self._answer.messages),
                streams=tuple(tuple(part) for part in self.parts),
                as_text=as_text,
                lines=self.lines,
                size=self.size,
                read_at=self._started_at,
                read_mono=self._started,
                landed_mono=self._clock(),
            )
        self._keep(entry)


def _tee(stream: LogStream, index: int, recording: Recording) -> Iterator[str]:
    """``stream``'s lines, each also given to ``recording``; closing it closes ``stream``."""
    add = recording.add
    try:
        for line in stream:
            add(index, line)
            yield line
        recording.ended()
    finally:
        try:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        finally:
            recording.closed()
