"""The executor doubles' journal read back (``executor_journal``): parsing."""

from __future__ import annotations

from pathlib import Path

from airflow_executor_logs_testing.executor_journal import JournalEntry, read_build_journal


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
