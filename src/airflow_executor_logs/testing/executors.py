"""
Test-double executors an ``airflow api-server`` can import by module path from ``[core] executor``.

* :class:`ForkingLogExecutor` behaves like ``KubernetesExecutor`` on cncf-kubernetes 10.18.0: its
  ``__init__`` starts a ``multiprocessing`` Manager and it overrides ``get_task_log``. It has no
  class-level reader, so ``airflow_executor_logs`` reads through a short-lived instance of it.
  The Manager is always *forked*: uvicorn's multi-worker supervisor leaves ``spawn`` as the default
  start method in its workers, where each Manager would start a new interpreter (seconds, not
  milliseconds) and a load test would measure that instead of the package.
* :class:`PlainExecutor` inherits ``BaseExecutor.get_task_log`` (like Local or Celery): nothing
  needs to be built to read its logs.

Set ``AIRFLOW_EXECUTOR_LOGS_BUILD_JOURNAL`` to a file path to have both append one line per
construction boundary, ``"<pid> <thread-id> <Class> start|end <time.monotonic()>"``; see
:func:`read_build_journal` and :func:`overlapping_builds`.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.executors.base_executor import BaseExecutor

if TYPE_CHECKING:
    from multiprocessing.managers import SyncManager

__all__ = [
    "BUILD_JOURNAL_ENV",
    "BuildInterval",
    "ForkingLogExecutor",
    "JournalEntry",
    "PlainExecutor",
    "build_intervals",
    "overlapping_builds",
    "read_build_journal",
]

#: Environment variable naming the file constructions are journaled to (unset: no journal).
BUILD_JOURNAL_ENV = "AIRFLOW_EXECUTOR_LOGS_BUILD_JOURNAL"

FALLBACK_SOURCE = "read by ForkingLogExecutor"
FALLBACK_LINE = "fallback log line for {task_id} try {try_number}"


def _journal(cls: type, event: Literal["start", "end"]) -> None:
    """Append one journal line with a single ``O_APPEND`` write (atomic across processes)."""
    path = os.environ.get(BUILD_JOURNAL_ENV)
    if not path:
        return
    line = f"{os.getpid()} {threading.get_ident()} {cls.__name__} {event} {time.monotonic():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class ForkingLogExecutor(BaseExecutor):
    """Starts a ``multiprocessing`` Manager in ``__init__``; reads logs itself; has no class-level reader."""

    #: Start method of the Manager process (``None``: the process's default, as the provider does).
    start_method: ClassVar[str | None] = "fork"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _journal(ForkingLogExecutor, "start")
        try:
            super().__init__(*args, **kwargs)
            self._manager: SyncManager = multiprocessing.get_context(self.start_method).Manager()
        finally:
            _journal(ForkingLogExecutor, "end")

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """One source and one line naming the task and try."""
        return [FALLBACK_SOURCE], [FALLBACK_LINE.format(task_id=ti.task_id, try_number=try_number)]

    def start(self) -> None:
        """Mark the executor started (nothing to run)."""
        self._started = True

    def end(self) -> None:
        """
        Shut the Manager down, but only once ``start()`` ran.

        Like ``KubernetesExecutor.end()`` on 10.18.0, ending a never-started instance fails before
        reaching the Manager, so whoever built it must shut the Manager down itself.
        """
        if not getattr(self, "_started", False):
            raise RuntimeError("ForkingLogExecutor.end() called before start()")
        self._manager.shutdown()


class PlainExecutor(BaseExecutor):
    """Does not override ``get_task_log``; journals its construction so a test can prove it never happened."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _journal(PlainExecutor, "start")
        try:
            super().__init__(*args, **kwargs)
        finally:
            _journal(PlainExecutor, "end")


@dataclass(frozen=True)
class JournalEntry:
    """One line of the build journal."""

    pid: int
    thread_id: int
    executor: str
    event: str
    at: float


@dataclass(frozen=True)
class BuildInterval:
    """One construction: its start and end (``None`` if it never ended) in one process and thread."""

    pid: int
    thread_id: int
    executor: str
    start: float
    end: float | None


def read_build_journal(path: str | os.PathLike[str]) -> list[JournalEntry]:
    """Parse the journal at ``path`` (missing file: no entries)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        pid, thread_id, executor, event, at = line.split()
        entries.append(JournalEntry(int(pid), int(thread_id), executor, event, float(at)))
    return entries


def build_intervals(entries: list[JournalEntry]) -> list[BuildInterval]:
    """Pair each ``start`` with the next ``end`` of the same process, thread and class."""
    open_builds: dict[tuple[int, int, str], list[float]] = defaultdict(list)
    intervals: list[BuildInterval] = []
    for e in sorted(entries, key=lambda e: e.at):
        key = (e.pid, e.thread_id, e.executor)
        if e.event == "start":
            open_builds[key].append(e.at)
        elif open_builds[key]:
            intervals.append(BuildInterval(e.pid, e.thread_id, e.executor, open_builds[key].pop(0), e.at))
    for (pid, thread_id, executor), starts in open_builds.items():
        intervals.extend(BuildInterval(pid, thread_id, executor, start, None) for start in starts)
    return sorted(intervals, key=lambda i: (i.pid, i.start))


def overlapping_builds(intervals: list[BuildInterval]) -> list[tuple[BuildInterval, BuildInterval]]:
    """Pairs of constructions of one class in one process that ran at the same time."""
    by_key: dict[tuple[int, str], list[BuildInterval]] = defaultdict(list)
    for interval in intervals:
        by_key[(interval.pid, interval.executor)].append(interval)
    overlaps = []
    for group in by_key.values():
        group.sort(key=lambda i: i.start)
        latest = group[0]  # the construction seen so far that ends last (``None``: never ended)
        for later in group[1:]:
            if latest.end is None or later.start < latest.end:
                overlaps.append((latest, later))
            if latest.end is not None and (later.end is None or later.end > latest.end):
                latest = later
    return overlaps
