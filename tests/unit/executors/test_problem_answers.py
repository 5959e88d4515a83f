"""How a problem is shown: one line of at most LINE_WIDTH characters, last in the log, and a source message."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from airflow_executor_logs.executors.answers import Answer
from airflow_executor_logs.executors.last_good_lines import Remembered
from airflow_executor_logs.executors.problem_answers import LINE_WIDTH, problem_answer, problem_line
from airflow_executor_logs.executors.reader_protocol import NOTICE_LOGGER, Outcome, ReadReport, TextStreams, to_task_log

READ_AT = datetime(2026, 12, 5, 12, 3, 11, tzinfo=timezone.utc)


def report(summary: str, detail: str = "the whole detail") -> ReadReport:
    out = ReadReport()
    out.problem(Outcome.TIMEOUT, detail, summary=summary, transient=True)
    return out


def kept(read_mono: float = 100.0) -> Remembered:
    return Remembered(
        messages=("Found logs through kube API",),
        streams=(("a\n", "b\n"),),
        as_text=False,
        lines=2,
        size=600,
        read_at=READ_AT,
        read_mono=read_mono,
    )


def test_the_line_says_what_failed_which_lines_are_shown_and_when_the_next_attempt_is() -> None:
    line = problem_line(report("Kubernetes API timed out (5 s)"), kept(100.0), now=142.0, retry_in=1.0)
    assert line == "Kubernetes API timed out (5 s): lines above from 12:03:11 UTC (42 s ago); retry in 1 s"


def test_ages_past_90_s_are_in_minutes_and_retries_are_whole_seconds_at_least_one() -> None:
    assert "(5 min ago); retry in 3 s" in problem_line(report("x"), kept(0.0), now=300.0, retry_in=2.4)
    assert problem_line(report("x"), None, now=0.0, retry_in=0.2) == "x: no earlier lines to show; retry in 1 s"
    assert problem_line(report("x"), None, now=0.0, retry_in=None) == "x: no earlier lines to show"


def test_a_long_summary_is_shortened_never_the_times() -> None:
    line = problem_line(report("W" * 200), kept(100.0), now=101.0, retry_in=1.0)
    assert len(line) == LINE_WIDTH
    assert line.endswith("…: lines above from 12:03:11 UTC (1 s ago); retry in 1 s")


def test_without_a_summary_the_detail_is_the_line() -> None:
    assert problem_line(report("", "only a detail"), None, now=0.0, retry_in=None).startswith("only a detail:")


def test_a_problem_that_is_not_transient_says_nothing_of_other_lines() -> None:
    failed = ReadReport()
    failed.problem(Outcome.FAILED, "(403) Forbidden", transient=False)
    assert problem_line(failed, None, now=0.0, retry_in=None) == "(403) Forbidden"
    assert problem_answer(Answer(["(403) Forbidden"], [], failed), "LINE", None).messages == ["(403) Forbidden"]


def test_the_source_message_and_the_line_say_the_same_thing_is_shown() -> None:
    """One wording for a timeout, with and without last good lines (no "0 lines" above old lines)."""
    timed_out = report("Kubernetes API timed out (5 s)", "Reading from k8s pod logs timed out after 5 s")
    with_lines = problem_answer(Answer([], [], timed_out), "LINE", kept())
    assert with_lines.messages == [
        "Reading from k8s pod logs timed out after 5 s; showing the lines read at 12:03:11 UTC"
    ]
    assert "lines above from 12:03:11 UTC" in problem_line(timed_out, kept(100.0), now=142.0, retry_in=None)
    without = problem_answer(Answer([], [], timed_out), "LINE", None)
    assert without.messages == ["Reading from k8s pod logs timed out after 5 s; no earlier lines to show"]
    assert problem_line(timed_out, None, now=142.0, retry_in=None).endswith(": no earlier lines to show")


def test_the_answer_has_the_detail_as_a_source_message_and_the_line_last() -> None:
    failed = Answer(["Attempting to fetch logs"], [], report("s", "detail of it"))
    messages, chunks = to_task_log(problem_answer(failed, "LINE", None).task_log())
    assert messages == ["Attempting to fetch logs", "detail of it; no earlier lines to show"]
    assert chunks == ["LINE"]
    assert isinstance(problem_answer(failed, "LINE", None).streams, TextStreams)


def test_with_last_good_lines_they_come_first_then_the_line() -> None:
    failed = Answer(["detail of it"], [], report("s", "detail of it"))
    answered = problem_answer(failed, "LINE", kept())
    assert answered.messages == ["detail of it; showing the lines read at 12:03:11 UTC"]  # not repeated
    assert [list(stream) for stream in answered.streams] == [["a\n", "b\n"], ["LINE"]]


def _remote(err: BaseException) -> tuple[str, dict[str, str]]:
    from airflow_executor_logs.executors.problem_answers import remote_store_problem

    sources, lines = remote_store_problem("OpensearchRemoteLogIO", err, 2.0)
    (source,), (line,) = sources, lines
    return source, json.loads(line)


def test_a_remote_store_that_failed_is_a_source_message_and_a_warning_line_redacted() -> None:
    source, line = _remote(ConnectionError("http://admin:hunter2@10.0.0.1:9200/_search refused"))
    assert source.startswith("Remote logs unavailable: OpensearchRemoteLogIO: ConnectionError:")
    assert "hunter2" not in source
    assert "<credentials redacted>" in source
    assert line["event"] == "OpensearchRemoteLogIO failed: ConnectionError; showing the task's own lines"
    assert (line["level"], line["logger"]) == ("warning", NOTICE_LOGGER)
    assert len(line["event"]) <= LINE_WIDTH


def test_a_remote_store_past_its_deadline_names_its_option() -> None:
    from airflow_executor_logs.executors.resilience.deadline import ReadDeadlineExceeded

    source, line = _remote(ReadDeadlineExceeded(2.0))
    assert source == (
        "Remote logs unavailable: OpensearchRemoteLogIO timed out after 2 s ([executor_logs] remote_read_timeout)"
    )
    assert line["event"] == "OpensearchRemoteLogIO timed out (2 s): showing the task's own lines"


def test_a_remote_store_with_reads_still_blocked_is_skipped() -> None:
    from airflow_executor_logs.executors.resilience.guard import ReaderBlocked

    source, line = _remote(ReaderBlocked("4 earlier reads are still blocked past their deadline"))
    assert source.endswith("4 earlier reads are still blocked past their deadline")
    assert line["event"] == "OpensearchRemoteLogIO skipped: earlier reads still blocked"
