"""
How a problem is shown: as a source message and as one line at the end of the log, at most
:data:`LINE_WIDTH` characters, after the last good lines if there are any.

"Kubernetes API timed out (5 s): lines above from 12:03:11 UTC (42 s ago); retry in 1 s"
"""

from __future__ import annotations

import math

from airflow_executor_logs.executors.answers import Answer
from airflow_executor_logs.executors.last_good_lines import Remembered
from airflow_executor_logs.executors.reader_protocol import (
    Outcome,
    ReadReport,
    TextStream,
    TextStreams,
    notice,
    utc_now,
)
from airflow_executor_logs.executors.resilience.deadline import ReadDeadlineExceeded, timed_out
from airflow_executor_logs.executors.resilience.guard import ReaderBlocked

__all__ = ["LINE_WIDTH", "problem_answer", "problem_line", "problem_notice", "remote_store_problem", "shown_instead"]

#: Characters a problem line is cut to: with the UI's timestamp and level before it, it fits a 1,400 px window.
LINE_WIDTH = 95


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
    detail = report.detail + (shown_instead(stale) if report.transient else "")
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


def problem_line(report: ReadReport, stale: Remembered | None, now: float, retry_in: float | None) -> str:
    """
    The one line that says a problem: what failed, the lines shown instead (for a transient one), and
    the next attempt. The source message says the same (:func:`shown_instead`).

    At most :data:`LINE_WIDTH` characters, so that, after the UI's timestamp and level, it fits the log
    panel of a laptop-sized window (checked in a real browser): what failed is shortened, never the rest.
    """
    tail = ""
    if stale is not None:
        tail += f": lines above from {stale.read_at:%H:%M:%S} UTC ({_age(now - stale.read_mono)} ago)"
    elif report.transient:
        tail += ": no earlier lines to show"
    if retry_in is not None:
        tail += f"; retry in {max(math.ceil(retry_in - 0.05), 1)} s"
    head = report.summary or report.detail
    room = max(LINE_WIDTH - len(tail), 24)
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + tail


def problem_notice(report: ReadReport) -> str:
    """``report``'s problem as the log's notice line: its summary cut to :data:`LINE_WIDTH`, a warning if transient."""
    text = report.summary if len(report.summary) <= LINE_WIDTH else report.summary[: LINE_WIDTH - 1] + "…"
    return notice(text, "warning" if report.transient else "error", at=utc_now())


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
        summary = f"{store} timed out ({seconds:g} s): showing the task's own lines"
        report.problem(Outcome.TIMEOUT, detail, summary=summary)
    elif isinstance(err, ReaderBlocked):
        report.problem(Outcome.REFUSED, f"{head}: {err}", summary=f"{store} skipped: earlier reads still blocked")
    else:
        reason = f"{type(err).__name__}: {err}"
        summary = f"{store} failed: {type(err).__name__}; showing the task's own lines"
        report.problem(Outcome.FAILED, f"{head}: {reason}", summary=summary, transient=True)
    return [report.detail], [problem_notice(report)]


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
