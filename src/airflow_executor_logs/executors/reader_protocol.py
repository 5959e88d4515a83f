"""
The class-level log reader contract: what a reader receives and what it returns.

A reader answers for an executor *class*, so that no executor has to be built to read a RUNNING
task's logs. It is called with the resolved executor and a :class:`ReadContext`, and returns the
shape of ``get_streaming_task_log``: messages, plus lazy line iterators that core consumes as it
serves the log. The list shape of ``get_task_log`` is derived from it in one place,
:func:`to_task_log`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from airflow_executor_logs.config import Settings
    from airflow_executor_logs.executors.deadline import Deadline
    from airflow_executor_logs.executors.resolution import ResolvedExecutor
    from airflow_executor_logs.metrics import Metrics

__all__ = [
    "ExecutorLogReader",
    "LegacyClassLogReader",
    "LogStream",
    "Notice",
    "ReadContext",
    "ReaderRegistration",
    "StreamingTaskLog",
    "TaskLog",
    "notice",
    "to_task_log",
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


@dataclass(frozen=True)
class ReadContext:
    """What the pipeline gives every read besides the task: its deadline, the settings and the metrics."""

    deadline: Deadline
    settings: Settings
    metrics: Metrics


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


def notice(message: str, level: str = "warning") -> str:
    """A log line Airflow's log parser turns into a structured message with ``level``."""
    return json.dumps({"event": message, "level": level, "logger": NOTICE_LOGGER})


def to_task_log(answer: StreamingTaskLog) -> TaskLog:
    """
    The ``get_task_log`` answer for a streaming answer, as the Kubernetes provider derives it.

    Each stream is read to its end and joined with newlines; :class:`Notice` lines become messages;
    no stream at all gives ``[""]``.
    """
    messages, streams = answer
    messages = list(messages)
    logs: list[str] = []
    for stream in streams:
        lines: list[str] = []
        for line in stream:
            if isinstance(line, Notice):
                messages.append(line.message)
            else:
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
    it inline instead of on a guarded worker thread.
    """

    executor: str
    reader: ExecutorLogReader | LegacyClassLogReader | None = None
    include_subclasses: bool = False
    factory: Callable[[], ExecutorLogReader] | None = None
    keeps_deadline: bool = False

    def __post_init__(self) -> None:
        if (self.reader is None) == (self.factory is None):
            raise ValueError(f"Registration for {self.executor!r} needs exactly one of reader= or factory=")
        if "." not in self.executor:
            raise ValueError(f"Registration names executor {self.executor!r}; expected 'module.ClassName'")
