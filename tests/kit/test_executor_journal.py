"""The executor doubles' journal (``executor_journal``): written per construction, counted, parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_executor_logs_testing.executor_journal import (
    JOURNAL_ENV,
    Journaled,
    JournalEntry,
    constructed,
    events,
    read_build_journal,
    record,
)


def test_a_missing_journal_has_no_entries(tmp_path: Path) -> None:
    assert read_build_journal(tmp_path / "never-written") == []


def test_each_line_is_one_entry(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    path.write_text("build PlainExecutor 10 140 5.25\nbuilt PlainExecutor 10 140 5.5\nended ManagerExecutor 11 7 6\n")
    assert read_build_journal(str(path)) == [
        JournalEntry("build", "PlainExecutor", 10, 140, 5.25),
        JournalEntry("built", "PlainExecutor", 10, 140, 5.5),
        JournalEntry("ended", "ManagerExecutor", 11, 7, 6.0),
    ]


class _Raises(metaclass=Journaled):
    def __init__(self) -> None:
        raise RuntimeError("construction fails")


def test_a_construction_is_journaled_whole_even_when_it_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JOURNAL_ENV, str(tmp_path / "journal"))
    with pytest.raises(RuntimeError, match="construction fails"):
        _Raises()
    record("ended", _Raises)
    assert [entry.event for entry in read_build_journal(tmp_path / "journal")] == ["build", "built", "ended"]
    assert (constructed(_Raises), events("built", _Raises), events("ended", _Raises)) == (1, 1, 1)


def test_without_a_journal_nothing_is_written_or_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOURNAL_ENV, raising=False)
    with pytest.raises(RuntimeError):
        _Raises()
    assert constructed(_Raises) == 0
