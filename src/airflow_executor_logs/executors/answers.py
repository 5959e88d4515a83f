"""
The seam around every answer of the pipeline: what was read, how it went, and a policy that sees both.

Every read the pipeline answers (a class-level reader, a short-lived executor, or a problem it met
itself) passes once through the pipeline's :class:`AnswerPolicy`, with the read's :class:`ReadKey`. The
one exception is a task whose executor class cannot be resolved: there is no class to key a read by,
and the pipeline renders that problem itself (:func:`~.problem_answers.alone`). A policy may answer
without reading (an answer it kept, or the answer of an identical read in flight), read and keep what it
got; a problem reported before the answer reaches it typed (its report) and it renders it, once, with
what it shows instead (:func:`~.problem_answers.rendered`). A problem met later, while core reads the
streams, is not rendered here: the stream ends with a notice line that says it. The pipeline's default
is :class:`~.answer_memory.AnswerMemory`; :class:`~.problem_answers.PassThrough` reads every time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_executor_logs.executors.reader_protocol import LogStream, Outcome, ReadReport, StreamingTaskLog

__all__ = ["Answer", "AnswerPolicy", "ReadKey"]


@dataclass(frozen=True)
class ReadKey:
    """What one read is of: the executor class (by path), the task instance and the try."""

    executor: str
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, executor: str, ti: Any, try_number: int) -> ReadKey:
        """The key of reading try ``try_number`` of ``ti`` through the executor class at path ``executor``."""
        # getattr: building a key must never fail a read (a 500), whatever object a caller passes as ``ti``.
        return cls(
            executor,
            getattr(ti, "dag_id", ""),
            getattr(ti, "task_id", ""),
            getattr(ti, "run_id", ""),
            getattr(ti, "map_index", -1),
            try_number,
        )


@dataclass
class Answer:
    """One answer in the pipeline's one shape, with the report of how its read went (streams may still add to it)."""

    messages: list[str]
    streams: list[LogStream]
    report: ReadReport = field(default_factory=ReadReport)

    @property
    def outcome(self) -> Outcome:
        return self.report.outcome

    def task_log(self) -> StreamingTaskLog:
        return self.messages, self.streams


class AnswerPolicy(Protocol):
    """Decides, around each read, whether to read and what to answer."""

    def answer(self, key: ReadKey, read: Callable[[], Answer], *, lasts: float) -> Answer:
        """
        The answer for ``key``, a problem rendered; ``read()`` reads it (at most once per call is expected)
        and takes at most ``lasts`` seconds, its reader's deadline.
        """
