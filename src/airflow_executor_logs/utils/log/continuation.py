"""
Continuation reads (``metadata["log_pos"]``): every log line once, in order, with our notices in the log.

Core counts in ``log_pos`` every line ``_read`` streams, and skips that many on the next read. Our
notices (a problem's last line, a timeout met mid-stream) are lines too, but the next answer no longer
has them: counted, they would make the next read skip a real line; and an answer with fewer lines than
the client already has (the last good lines under a warning, a problem alone, an older answer from
another API worker) would send its ``log_pos`` back, and lines already shown would come again.

So, on every core line (3.0 and 3.1 skip nothing, 3.2.x skip in an ``islice`` their ``read()`` refuses,
upstream #69503):

* notices are counted as they reach core (:func:`counted`, :func:`counted_task_log`), and left out of
  the ``log_pos`` handed back;
* a continuation read asks core to skip nothing and skips the lines the client has itself, never a
  notice (:func:`resume`): a problem stays visible to a client that tails;
* the ``log_pos`` handed back never goes below the client's.

While the pod's log fits the provider's tail window (``[kubernetes_executor] running_pod_log_lines``),
each pod line then reaches a client that follows the token exactly once. Past it, the window slides
and ``log_pos`` counts lines of the window: a tailing client sees nothing new, as with stock Airflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from airflow_executor_logs.executors.reader_protocol import (
    NOTICE_LOGGER,
    NOTICE_MARK,
    StreamingTaskLog,
    TaskLog,
    TextStream,
)

__all__ = ["Continuation", "counted", "counted_task_log", "reading"]


@dataclass
class Continuation:
    """One ``_read``: the lines the client already has (``None``: a first read) and our notices core got."""

    sent: int | None
    notices: int = 0

    def core_metadata(self, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        """What core's ``_read`` is asked with: on a continuation read, skip nothing (and no header)."""
        if self.sent is None:
            return metadata
        return {**(metadata or {}), "log_pos": 0}

    def resume(self, stream: Any, out_metadata: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Core's answer for the client: the lines it has skipped, notices kept, and its next ``log_pos``."""
        total = out_metadata.get("log_pos")
        if isinstance(total, int):
            lines = max(total - self.notices, 0)
            out_metadata = {**out_metadata, "log_pos": max(lines, self.sent or 0)}
        if self.sent is None or isinstance(stream, (list, str)):  # a first read, or a handler's own legacy form
            return stream, out_metadata
        return _skip_lines(stream, self.sent), out_metadata


_current: ContextVar[Continuation | None] = ContextVar("airflow_executor_logs_continuation", default=None)


@contextlib.contextmanager
def reading(metadata: dict[str, Any] | None) -> Iterator[Continuation]:
    """The continuation of one ``_read`` with ``metadata``, current while core reads (notices count in it)."""
    sent = (metadata or {}).get("log_pos")
    continuation = Continuation(sent if isinstance(sent, int) and sent >= 0 else None)
    token = _current.set(continuation)
    try:
        yield continuation
    finally:
        _current.reset(token)


def counted(answer: StreamingTaskLog) -> StreamingTaskLog:
    """The streaming answer core gets, its notice lines counted in the current ``_read`` as core reads them."""
    continuation = _current.get()
    if continuation is None:
        return answer
    messages, streams = answer
    kept: list[Any] = []
    for stream in streams:
        if isinstance(stream, TextStream):  # in memory: counted now, passed on as it is
            continuation.notices += stream.text.count(NOTICE_MARK)
            kept.append(stream)
        else:
            kept.append(_count_notices(stream, continuation))
    return messages, kept


def counted_task_log(answer: TaskLog) -> TaskLog:
    """The list-form answer core gets, its notice lines counted in the current ``_read``."""
    continuation = _current.get()
    if continuation is not None:
        continuation.notices += sum(chunk.count(NOTICE_MARK) for chunk in answer[1])
    return answer


def _count_notices(stream: Iterator[str], continuation: Continuation) -> Iterator[str]:
    try:
        for line in stream:
            if NOTICE_MARK in line:
                continuation.notices += 1
            yield line
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _skip_lines(stream: Iterator[Any], count: int) -> Iterator[Any]:
    """``stream`` without its first ``count`` log lines; our notices among them are kept."""
    for message in stream:
        if count <= 0:
            yield message
            break
        if getattr(message, "logger", None) == NOTICE_LOGGER:
            yield message
        else:
            count -= 1
    yield from stream
