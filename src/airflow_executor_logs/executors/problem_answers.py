"""
The one owner of problems: a read's problem is reported typed (:class:`~.reader_protocol.ReadReport`: what
failed, transient or not, the next attempt) and rendered here once, by :func:`rendered`: as a source message
and as one line at the end of the log, at most :data:`LINE_WIDTH` characters, after the lines shown
instead (the last good lines) if there are any.

"Kubernetes API timed out (5 s): lines above from 12:03:11 UTC (42 s ago); retry in 1 s"
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from airflow_executor_logs import metrics as metric_names
from airflow_executor_logs.config import SECTION
from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.last_good_lines import Remembered
from airflow_executor_logs.executors.reader_protocol import (
    Outcome,
    ReadReport,
    TextStream,
    TextStreams,
    notice,
    utc_now,
)
from airflow_executor_logs.executors.resilience.deadline import ReadDeadlineExceeded, timed_out, timed_out_briefly
from airflow_executor_logs.executors.resilience.guard import ReaderBlocked

__all__ = [
    "LINE_WIDTH",
    "PassThrough",
    "alone",
    "failed",
    "no_reader",
    "preload_refused",
    "problem",
    "problem_answer",
    "problem_line",
    "reader_blocked",
    "reader_failure",
    "reader_timed_out",
    "remote_store_problem",
    "rendered",
    "short_lived_timed_out",
    "shown_instead",
    "unresolved",
    "unresolved_message",
    "worker_busy",
]

#: Characters a problem line is cut to: with the UI's timestamp and level before it, it fits a 1,400 px window.
LINE_WIDTH = 95


def problem(
    report: ReadReport | None,
    outcome: Outcome,
    message: str,
    *,
    summary: str = "",
    transient: bool | None = None,
    counter: str | None = None,
) -> Answer:
    """A problem the pipeline met, reported on ``report`` (``None``: a fresh one), not yet rendered."""
    report = report or ReadReport()
    report.problem(outcome, message, summary=summary, transient=transient, counter=counter)
    return Answer([report.detail], [], report)


def unresolved(ti: Any, err: BaseException, report: ReadReport) -> Answer:
    """A task whose executor class cannot be resolved."""
    name = getattr(ti, "executor", None) or "(default)"
    summary = f"Unknown executor {name!r}: check the task's executor and [core] executor"
    return problem(report, Outcome.FAILED, unresolved_message(err), summary=summary)


def worker_busy(limit: int, report: ReadReport, *, short_lived: bool = False) -> Answer:
    """No slot for one more read in this API server worker (``short_lived``: one more short-lived executor)."""
    if short_lived:
        message = (
            f"Executor logs unavailable: this API server worker is already building {limit} short-lived "
            f"executors ([{SECTION}] max_concurrent_fallback_reads); try again shortly"
        )
        return problem(report, Outcome.REFUSED, message, summary=f"API worker busy ({limit} short-lived reads running)")
    message = (
        f"Executor logs unavailable: this API server worker is busy, {limit} reads of running tasks' logs "
        f"are already waiting ([{SECTION}] max_concurrent_reads); try again shortly"
    )
    return problem(report, Outcome.REFUSED, message, summary=f"API worker busy ({limit} log reads waiting)")


def no_reader(executor_cls: type) -> Answer:
    """An executor class without a class-level reader, while short-lived executors are off (not counted)."""
    name = executor_cls.__name__
    message = (
        f"Executor logs unavailable: {name} has no class-level log reader and [{SECTION}] fallback_enabled is off."
    )
    summary = f"No log reader for {name}: set [{SECTION}] fallback_enabled = True to read it"
    return problem(None, Outcome.REFUSED, message, summary=summary, transient=False)


def failed(executor_cls: type, err: BaseException, report: ReadReport) -> Answer:
    """``executor_cls``'s reader (or short-lived executor, or finding its reader) raised ``err``."""
    return problem(report, Outcome.FAILED, reader_failure(executor_cls, err))


def preload_refused(executor_cls: type, err: Any, report: ReadReport) -> Answer:
    """A short-lived read refused: the helper's preload started a thread (``err``); counted as a failure."""
    message = reader_failure(executor_cls, err)
    return problem(report, Outcome.REFUSED, message, summary=err.summary, counter=metric_names.FAILURES)


def reader_timed_out(name: str, seconds: float, report: ReadReport) -> Answer:
    """A reader (by its ``name``) that did not answer within its ``seconds``."""
    message = timed_out(f"Executor logs unavailable: {name}", seconds)
    return problem(report, Outcome.TIMEOUT, message, summary=timed_out_briefly(name, seconds))


def short_lived_timed_out(executor_cls: type, seconds: float, err: BaseException, report: ReadReport) -> Answer:
    """A short-lived executor stopped at its deadline (``err`` says how long it ran)."""
    summary = timed_out_briefly(f"Short-lived {executor_cls.__name__}", seconds)
    return problem(report, Outcome.TIMEOUT, f"Executor logs unavailable: {err}", summary=summary)


def reader_blocked(name: str, err: BaseException, report: ReadReport) -> Answer:
    """A reader not called: its earlier calls still block its threads (refused, counted as a refusal)."""
    message = f"Executor logs unavailable: {name}: {err}"
    return problem(report, Outcome.REFUSED, message, summary=f"{name} blocked (earlier reads still running)")


def rendered(
    answer: Answer,
    stale: Remembered | None,
    now: float,
    at: datetime,
    retry_in: float | None,
    *,
    remembers: bool = True,
) -> tuple[Answer, str]:
    """
    ``answer``'s problem rendered, once: its source message, then ``stale``'s lines (for a transient one)
    and the problem's line last, stamped ``at`` (``now``: monotonic, for the age of ``stale``); and that line.
    A policy that keeps no lines (``remembers`` false) says nothing of lines shown instead.
    """
    report = answer.report
    text = problem_line(report, stale, now, retry_in, remembers=remembers)
    line = notice(text, "warning" if report.transient else "error", at=at)
    return problem_answer(answer, line, stale, remembers=remembers), line


def alone(answer: Answer) -> Answer:
    """``answer`` as is, or its problem rendered with nothing shown instead (nothing is kept to show)."""
    if answer.outcome is Outcome.SUCCESS:
        return answer
    return rendered(answer, None, 0.0, utc_now(), None, remembers=False)[0]


class PassThrough:
    """The policy that reads every time and answers what it read (a problem rendered :func:`alone`)."""

    def answer(self, key: ReadKey, read: Callable[[], Answer], *, lasts: float) -> Answer:
        return alone(read())


def problem_answer(answer: Answer, line: str, stale: Remembered | None, *, remembers: bool = True) -> Answer:
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
    detail = report.detail + (shown_instead(stale) if report.transient and remembers else "")
    messages = [detail if message == report.detail else message for message in answer.messages]
    if report.detail and detail not in messages:
        messages.append(detail)
    if stale is None:
        return Answer(messages, TextStreams([TextStream(line)]), report)
    _, streams = stale.replay(line)
    return Answer(messages, streams, report)


def shown_instead(stale: Remembered | None) -> str:
    """What the source message of a transient problem adds: the lines shown instead, and from when."""
    if stale is None:
        return "; no earlier lines to show"
    return f"; showing the lines read at {stale.read_at:%H:%M:%S} UTC"


def problem_line(
    report: ReadReport, stale: Remembered | None, now: float, retry_in: float | None, *, remembers: bool = True
) -> str:
    """
    The one line that says a problem: what failed, the lines shown instead (for a transient one), and
    the next attempt. The source message says the same (:func:`shown_instead`).

    At most :data:`LINE_WIDTH` characters, so that, after the UI's timestamp and level, it fits the log
    panel of a laptop-sized window (checked in a real browser): what failed is shortened, never the rest.
    """
    tail = ""
    if stale is not None:
        tail += f": lines above from {stale.read_at:%H:%M:%S} UTC ({_age(now - stale.read_mono)} ago)"
    elif report.transient and remembers:
        tail += ": no earlier lines to show"
    if retry_in is not None:
        tail += f"; retry in {max(math.ceil(retry_in - 0.05), 1)} s"
    head = report.summary or report.detail
    room = max(LINE_WIDTH - len(tail), 24)
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + tail


def remote_store_problem(store: str, err: BaseException, seconds: float) -> tuple[list[str], list[str]]:
    """
    A running task's remote log read (``store``, a ``RemoteLogIO`` class name) that failed with ``err`` or
    ran past its ``seconds``, as core's remote answer: a source message and one notice line. The task's own
    lines (its pod's, its worker's) are read after it, as if the store had nothing.
    """
    report = ReadReport()
    head = f"Remote logs unavailable: {store}"
    if isinstance(err, ReadDeadlineExceeded):
        detail = timed_out(head, seconds, option="remote_read_timeout")
        summary = f"{timed_out_briefly(store, seconds)}: showing the task's own lines"
        report.problem(Outcome.TIMEOUT, detail, summary=summary)
    elif isinstance(err, ReaderBlocked):
        report.problem(Outcome.REFUSED, f"{head}: {err}", summary=f"{store} skipped: earlier reads still blocked")
    else:
        reason = f"{type(err).__name__}: {err}"
        summary = f"{store} failed: {type(err).__name__}; showing the task's own lines"
        report.problem(Outcome.FAILED, f"{head}: {reason}", summary=summary, transient=True)
    _, line = rendered(Answer([report.detail], [], report), None, 0.0, utc_now(), None, remembers=False)
    return [report.detail], [line]


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def unresolved_message(err: BaseException) -> str:
    """What the log view shows for a task whose executor class cannot be resolved."""
    return f"Executor logs unavailable: {err}"


def reader_failure(executor_cls: type, err: BaseException) -> str:
    """What the log view shows when ``executor_cls``'s reader (or short-lived executor) failed with ``err``."""
    from airflow_executor_logs.utils.isolated_call import IsolatedCallFailed

    reason = str(err) if isinstance(err, IsolatedCallFailed) else f"{type(err).__name__}: {err}"
    return f"Executor logs unavailable: {executor_cls.__name__} failed to read logs: {reason}"
