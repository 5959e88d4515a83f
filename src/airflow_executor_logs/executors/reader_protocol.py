"""
The class-level log reader contract: what a reader receives and what it returns.

A reader answers for an executor *class*, so that no executor has to be built to read a RUNNING
task's logs. It is called with the resolved executor and a :class:`ReadContext`, and returns the
shape of ``get_streaming_task_log``: messages, plus lazy line iterators that core consumes as it
serves the log. That is the one shape of an answer through the pipeline: the list shape of
``get_task_log`` is turned into it once (:func:`as_streaming`) and derived from it once
(:func:`to_task_log`). A reader says how its read went on ``context.report``.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from airflow_executor_logs import metrics as metric_names
from airflow_executor_logs.executors.redaction import redact

if TYPE_CHECKING:
    from airflow_executor_logs.config import Settings
    from airflow_executor_logs.executors.resilience.deadline import Deadline
    from airflow_executor_logs.executors.resolution import ResolvedExecutor
    from airflow_executor_logs.metrics import MetricsSink

__all__ = [
    "NOTICE_LOGGER",
    "NOTICE_MARK",
    "ExecutorLogReader",
    "LegacyClassLogReader",
    "LogStream",
    "Notice",
    "Outcome",
    "ReadContext",
    "ReadReport",
    "ReaderRegistration",
    "StreamingTaskLog",
    "TaskLog",
    "TextStream",
    "TextStreams",
    "as_streaming",
    "notice",
    "to_task_log",
    "utc_now",
]

#: ``get_task_log``'s answer: ``(messages, log_chunks)``.
TaskLog: TypeAlias = tuple[list[str], list[str]]
#: One lazily read log: an iterator of lines.
LogStream: TypeAlias = Iterator[str]
#: ``get_streaming_task_log``'s answer: ``(messages, log_streams)``.
StreamingTaskLog: TypeAlias = tuple[list[str], list[LogStream]]
#: The reader form of version 0.1: ``reader(executor_cls, ti, try_number) -> TaskLog``.
LegacyClassLogReader: TypeAlias = Callable[[type, Any, int], TaskLog]

NOTICE_LOGGER = "airflow_executor_logs"
#: What every notice line (:func:`notice`) holds, and no task's log line is expected to: how a notice is
#: told from the task's lines once it is text.
NOTICE_MARK = f'"logger": "{NOTICE_LOGGER}"'


class Outcome(enum.Enum):
    """How a read went."""

    #: No problem was reported: the reader answered (its answer may be empty).
    SUCCESS = "success"
    #: The read's deadline passed before it finished.
    TIMEOUT = "timeout"
    #: Not attempted: a circuit breaker was open, the worker was busy, a reader's threads were still blocked,
    #: short-lived executors are off, or a helper's preload started a thread.
    REFUSED = "refused"
    #: Anything else went wrong: an error status from the API (a pod not found, say), no pod for the task, a
    #: transport error, a reader that raised, an unknown executor.
    FAILED = "failed"


class ReadReport:
    """
    How one read went, as its reader tells it: a success until a problem is reported; the first problem stays.

    Besides the full ``detail`` (the source message), a problem may carry a ``summary`` short enough for
    one log line ("Kubernetes API not answering (timed out after 5 s)"), whether it is ``transient`` (the
    API may answer again: earlier lines are worth showing) and when the next attempt is (``retry_in``).
    """

    #: The counter of each problem's outcome (a refusal names its own: the bulkhead's, a breaker's).
    COUNTERS = {Outcome.TIMEOUT: metric_names.TIMEOUTS, Outcome.FAILED: metric_names.FAILURES}

    def __init__(self, count: Callable[[str], None] | None = None) -> None:
        self.outcome = Outcome.SUCCESS
        self.detail = ""
        self.summary = ""
        self.transient = False
        self.retry_in: float | None = None
        self._count = count
        self._lock = threading.Lock()

    def problem(
        self,
        outcome: Outcome,
        detail: str,
        *,
        summary: str = "",
        transient: bool | None = None,
        retry_in: float | None = None,
        counter: str | None = None,
    ) -> str:
        """
        Report a problem (also while streaming); later ones do not replace the first. ``transient``
        defaults to whether ``outcome`` is a timeout or a refusal. The first problem is counted, once, as
        ``counter`` (by default its outcome's: :attr:`COUNTERS`; a refusal by the bulkhead's).

        Every problem's text passes here, through the one redaction step (:func:`~.redaction.redact`):
        returns ``detail`` as viewers may see it.
        """
        detail, summary = redact(detail), redact(summary)
        with self._lock:
            first = self.outcome is Outcome.SUCCESS
            if first:
                self.outcome, self.detail, self.summary = outcome, detail, summary or detail
                self.transient = outcome in (Outcome.TIMEOUT, Outcome.REFUSED) if transient is None else transient
                self.retry_in = retry_in
        if first and self._count is not None:
            self._count(counter or self.COUNTERS.get(outcome, metric_names.BULKHEAD_REFUSALS))
        return detail


@dataclass(frozen=True)
class ReadContext:
    """What the pipeline gives every read besides the task: its deadline, the settings, the metrics, the report."""

    deadline: Deadline
    settings: Settings
    metrics: MetricsSink
    report: ReadReport = field(default_factory=ReadReport)


@runtime_checkable
class ExecutorLogReader(Protocol):
    """
    Reads a RUNNING task's executor logs for an executor class, without an executor instance.

    Return ``(messages, streams)``. Messages are the "log source details" core shows above the log;
    each stream yields log lines lazily. Report a problem met while streaming as a :class:`Notice`
    line. Never raise for an expected failure: say it in a message. A reader must finish, and its
    streams must end, by ``context.deadline``; the pipeline cuts readers that don't, unless they were
    registered with ``keeps_deadline=True``.
    """

    def __call__(
        self, executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext
    ) -> StreamingTaskLog: ...


class Notice(str):
    """
    A line about the read, not from the task: a structured log line in the streaming form, and a
    message in the list form (:func:`to_task_log` moves it there).
    """

    message: str

    def __new__(cls, message: str, level: str = "error") -> Notice:
        line = super().__new__(cls, notice(message, level))
        line.message = message
        return line


def utc_now() -> datetime:
    """The wall clock, in UTC (what the notices and the "read at" wording use; freezegun moves it)."""
    return datetime.now(timezone.utc)


def notice(message: str, level: str = "warning", *, at: datetime | None = None) -> str:
    """
    A log line Airflow's log parser turns into a structured message with ``level``.

    With ``at`` it carries that timestamp: core merges the log streams by timestamp, and a line without
    one takes the time of the line before it (or sorts first), so a notice stamped now sorts at the end
    of the log, where the view of a running task sits.
    """
    record: dict[str, str] = {"event": message, "level": level, "logger": NOTICE_LOGGER}
    if at is not None:
        record["timestamp"] = at.isoformat()
    return json.dumps(record)


class TextStream(Iterator[str]):
    """A log already read whole (a chunk of an answer in the list form), streamed line by line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines = iter(text.splitlines())

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        return next(self._lines)


class TextStreams(list[LogStream]):
    """
    The streams of an answer that came in the list form: one :class:`TextStream` per chunk.

    They are in memory, so they can neither block nor outlive a deadline (the guard and the bulkhead
    pass them through), and :func:`to_task_log` gives the chunks back exactly as they came, none included.
    """


def as_streaming(answer: TaskLog) -> StreamingTaskLog:
    """A ``get_task_log`` answer in the one shape of the pipeline."""
    messages, logs = answer
    return list(messages), TextStreams(TextStream(chunk) for chunk in logs)


def to_task_log(answer: StreamingTaskLog) -> TaskLog:
    """
    The ``get_task_log`` answer for a streaming answer, as the Kubernetes provider derives it.

    Each stream is read to its end and joined with newlines; :class:`Notice` lines also become messages
    (the provider says its problems there) and stay at their place in the log, where people look; no
    stream at all gives ``[""]``. An answer that came in the list form (:class:`TextStreams`) is given
    back as it came.
    """
    messages, streams = answer
    messages = list(messages)
    if isinstance(streams, TextStreams):
        return messages, [stream.text for stream in streams if isinstance(stream, TextStream)]
    logs: list[str] = []
    for stream in streams:
        lines: list[str] = []
        for line in stream:
            if isinstance(line, Notice):
                messages.append(line.message)
            lines.append(line)
        logs.append("\n".join(lines))
    return messages, logs or [""]


@dataclass(frozen=True)
class ReaderRegistration:
    """
    A reader for one executor class, named by import path so that registering imports nothing.

    Give ``reader`` (an :class:`ExecutorLogReader`, or a :data:`LegacyClassLogReader`), or ``factory``
    for a reader with state of its own (clients, caches): each pipeline then builds one and owns it.

    ``include_subclasses`` must be set deliberately: a subclass may build its clients differently
    (AwsEksExecutor subclasses KubernetesExecutor), and a reader that does not know that would read
    from the wrong place. ``keeps_deadline`` says the reader returns, and its streams end, by
    ``context.deadline`` on their own (for example through socket timeouts), so the pipeline can call
    it inline instead of on a guarded worker thread. ``applies_to`` narrows which classes (the named one
    and, with ``include_subclasses``, its subclasses) the reader serves: a class it refuses resolves as
    if the registration did not exist.
    """

    executor: str
    reader: ExecutorLogReader | LegacyClassLogReader | None = None
    include_subclasses: bool = False
    factory: Callable[[], ExecutorLogReader] | None = None
    keeps_deadline: bool = False
    applies_to: Callable[[type], bool] | None = None

    def __post_init__(self) -> None:
        if (self.reader is None) == (self.factory is None):
            raise ValueError(f"Registration for {self.executor!r} needs exactly one of reader= or factory=")
        if "." not in self.executor:
            raise ValueError(f"Registration names executor {self.executor!r}; expected 'module.ClassName'")
