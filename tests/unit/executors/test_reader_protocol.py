"""The reader contract: notices, the list form derived from the streaming form, registrations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_executor_logs.executors.reader_protocol import (
    NOTICE_LOGGER,
    ExecutorLogReader,
    Notice,
    ReaderRegistration,
    notice,
    to_task_log,
)


def _lines(*lines: str) -> Iterator[str]:
    yield from lines


def test_notice_is_a_structured_log_line_with_its_level() -> None:
    assert notice("cut short") == json.dumps({"event": "cut short", "level": "warning", "logger": NOTICE_LOGGER})
    assert json.loads(notice("x", "error")) == {"event": "x", "level": "error", "logger": "airflow_executor_logs"}


def test_a_notice_line_is_the_structured_line_and_keeps_its_message() -> None:
    line = Notice("the API went away")
    assert isinstance(line, str)
    assert line == notice("the API went away", "error")  # errors by default, unlike notice()
    assert line.message == "the API went away"
    assert Notice("slow", "warning") == notice("slow", "warning")


def test_to_task_log_joins_each_stream_and_copies_notices_to_the_messages() -> None:
    answer = (["source"], [_lines("a", Notice("first cut"), "b"), _lines(), _lines("c", Notice("second cut"))])
    assert to_task_log(answer) == (
        ["source", "first cut", "second cut"],
        [f"a\n{Notice('first cut')}\nb", "", f"c\n{Notice('second cut')}"],  # and they stay in the log
    )


def test_to_task_log_without_streams_is_one_empty_chunk_as_the_provider_answers() -> None:
    assert to_task_log((["no pod"], [])) == (["no pod"], [""])


def test_to_task_log_leaves_the_callers_messages_alone() -> None:
    messages = ["source"]
    to_task_log((messages, [_lines(Notice("cut"))]))
    assert messages == ["source"]


def test_to_task_log_reads_every_stream_to_its_end() -> None:
    pulled: list[str] = []

    def lines() -> Iterator[str]:
        for line in ["1", "2", "3"]:
            pulled.append(line)
            yield line

    assert to_task_log(([], [lines()])) == ([], ["1\n2\n3"])
    assert pulled == ["1", "2", "3"]


def test_a_callable_of_the_reader_shape_is_an_executor_log_reader() -> None:
    class Reader:
        def __call__(self, executor: Any, ti: Any, try_number: int, context: Any) -> Any:
            return [], []

    assert isinstance(Reader(), ExecutorLogReader)
    assert not isinstance(object(), ExecutorLogReader)


def test_a_registration_needs_a_reader_or_a_factory_and_a_class_path() -> None:
    with pytest.raises(ValueError, match="exactly one of reader= or factory="):
        ReaderRegistration("a.B")
    with pytest.raises(ValueError, match="exactly one of reader= or factory="):
        ReaderRegistration("a.B", reader=lambda executor, ti, try_number, context: ([], []), factory=object)
    with pytest.raises(ValueError, match=r"expected 'module\.ClassName'"):
        ReaderRegistration("B", reader=lambda executor_cls, ti, try_number: ([], []))


def test_a_registration_is_deliberate_about_subclasses_and_deadlines() -> None:
    registration = ReaderRegistration("a.B", factory=object)
    assert (registration.include_subclasses, registration.keeps_deadline, registration.reader) == (False, False, None)


@pytest.mark.parametrize(
    "chunks",
    [[], [""], ["one\ntwo\n"], ["a\r\nb", "c"], ["no newline at the end"]],
    ids=["none", "empty", "trailing newline", "crlf and two chunks", "plain"],
)
def test_an_answer_in_the_list_form_comes_back_exactly(chunks: list[str]) -> None:
    from airflow_executor_logs.executors.reader_protocol import TextStreams, as_streaming

    messages, streams = as_streaming((["m"], chunks))
    assert isinstance(streams, TextStreams)
    assert to_task_log((messages, streams)) == (["m"], chunks)


def test_an_answer_in_the_list_form_streams_its_lines() -> None:
    from airflow_executor_logs.executors.reader_protocol import as_streaming

    _, streams = as_streaming(([], ["one\ntwo\n", "three"]))
    assert [list(stream) for stream in streams] == [["one", "two"], ["three"]]
