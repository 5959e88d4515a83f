"""Executor constructions read from the doubles' journal: when each ran, and which ran at the same time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from airflow_executor_logs_testing.executor_journal import JournalEntry

__all__ = ["BuildInterval", "build_intervals", "overlapping_builds"]


@dataclass(frozen=True)
class BuildInterval:
    """One construction: its start and end (``None`` if it never ended) in one process and thread."""

    pid: int
    thread_id: int
    executor: str
    start: float
    end: float | None


def build_intervals(entries: list[JournalEntry]) -> list[BuildInterval]:
    """Pair each ``build`` with the next ``built`` of the same process, thread and class."""
    open_builds: dict[tuple[int, int, str], list[float]] = defaultdict(list)
    intervals: list[BuildInterval] = []
    for e in sorted(entries, key=lambda e: e.at):
        key = (e.pid, e.thread_id, e.executor)
        if e.event == "build":
            open_builds[key].append(e.at)
        elif e.event == "built" and open_builds[key]:
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
