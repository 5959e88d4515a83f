"""The journal the executor doubles of :mod:`airflow_executor_logs_testing.executors` append to, read back.

Pure parsing: no Airflow import, so a test can read a journal written by an api-server's workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JOURNAL_ENV", "JournalEntry", "read_build_journal"]

#: Environment variable naming the journal file (unset: the doubles journal nothing).
JOURNAL_ENV = "AEL_FAKE_EXECUTOR_JOURNAL"


@dataclass(frozen=True)
class JournalEntry:
    """One line of the journal."""

    event: str
    executor: str
    pid: int
    thread_id: int
    at: float


def read_build_journal(path: str | os.PathLike[str]) -> list[JournalEntry]:
    """Parse the journal at ``path`` (missing file: no entries)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        event, executor, pid, thread_id, at = line.split()
        entries.append(JournalEntry(event, executor, int(pid), int(thread_id), float(at)))
    return entries
