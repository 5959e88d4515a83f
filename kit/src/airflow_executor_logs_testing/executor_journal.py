"""The journal the executor doubles of :mod:`airflow_executor_logs_testing.executors` append to, and read back.

Short-lived executors run in a child process, so the doubles record what happens to them in a journal
file named by ``AEL_FAKE_EXECUTOR_JOURNAL`` (unset: no journal), one line per event appended with a
single ``O_APPEND`` write: ``"<event> <Class> <pid> <thread-id> <time.monotonic()>"``, where the event
is ``build`` (construction began), ``built`` (it returned or raised) or ``ended`` (``end()`` was called).
No Airflow import, so a test can read a journal written by an api-server's workers.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JOURNAL_ENV", "JournalEntry", "Journaled", "constructed", "ended", "events", "read_build_journal", "record"]

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


def record(event: str, cls: type) -> None:
    """Append one journal line with a single ``O_APPEND`` write (atomic across processes)."""
    journal = os.environ.get(JOURNAL_ENV)
    if not journal:
        return
    line = f"{event} {cls.__name__} {os.getpid()} {threading.get_ident()} {time.monotonic():.6f}\n"
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def events(event: str, cls: type) -> int:
    """How many times ``event`` (``build``, ``built``, ``ended``) happened to ``cls``, in any process."""
    journal = os.environ.get(JOURNAL_ENV)
    if not journal:
        return 0
    return sum(1 for entry in read_build_journal(journal) if (entry.event, entry.executor) == (event, cls.__name__))


def constructed(cls: type) -> int:
    """How many constructions of ``cls`` began."""
    return events("build", cls)


def ended(cls: type) -> int:
    """How many times ``end()`` was called on an instance of ``cls``."""
    return events("ended", cls)


class Journaled(type):
    """Journals every construction of its classes, whole (``build`` ... ``built``), even one that raises."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        record("build", cls)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            record("built", cls)
