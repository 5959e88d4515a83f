"""Executor constructions from the doubles' journal (``build_overlaps``): build intervals and overlaps."""

from __future__ import annotations

from airflow_executor_logs_testing.executor_journal import JournalEntry
from tests.support.build_overlaps import BuildInterval, build_intervals, overlapping_builds


def entry(event: str, pid: int, at: float, thread: int = 1, executor: str = "E") -> JournalEntry:
    return JournalEntry(event, executor, pid, thread, at)


def test_overlapping_builds_are_per_process_and_class() -> None:
    entries = [
        entry("build", 1, 0.0),
        entry("build", 1, 0.5, thread=2),  # a second thread of process 1 starts while the first builds
        entry("built", 1, 1.0),
        entry("built", 1, 1.5, thread=2),
        entry("build", 2, 0.2),  # another process: never overlaps process 1
        entry("built", 2, 0.9),
        entry("build", 1, 2.0, executor="F"),  # never finished
    ]
    intervals = build_intervals(entries)
    assert intervals == [
        BuildInterval(1, 1, "E", 0.0, 1.0),
        BuildInterval(1, 2, "E", 0.5, 1.5),
        BuildInterval(1, 1, "F", 2.0, None),
        BuildInterval(2, 1, "E", 0.2, 0.9),
    ]
    assert overlapping_builds(intervals) == [(intervals[0], intervals[1])]


def test_builds_pair_in_time_order_and_ignore_ends_and_unmatched_builts() -> None:
    entries = [
        entry("built", 1, 3.0),  # written out of order: paired by time
        entry("build", 1, 2.0),
        entry("build", 1, 0.0),
        entry("built", 1, 1.0),
        entry("ended", 1, 1.2),  # not a construction
        entry("built", 1, 4.0),  # no open build
    ]
    assert build_intervals(entries) == [BuildInterval(1, 1, "E", 0.0, 1.0), BuildInterval(1, 1, "E", 2.0, 3.0)]


def test_one_after_another_never_overlaps_and_a_build_that_never_ended_overlaps_every_later_one() -> None:
    one_after_another = [BuildInterval(1, 1, "E", 0.0, 1.0), BuildInterval(1, 2, "E", 1.0, 2.0)]
    assert overlapping_builds(one_after_another) == []
    never_ended = BuildInterval(1, 1, "E", 0.0, None)
    later = [BuildInterval(1, 2, "E", 5.0, 6.0), BuildInterval(1, 3, "E", 7.0, 8.0)]
    assert overlapping_builds([*later, never_ended]) == [(never_ended, later[0]), (never_ended, later[1])]


def test_a_build_is_compared_with_the_one_seen_so_far_that_ends_last() -> None:
    long, short, late = (
        BuildInterval(1, 1, "E", 0.0, 10.0),
        BuildInterval(1, 2, "E", 1.0, 2.0),
        BuildInterval(1, 3, "E", 5.0, 6.0),
    )
    assert overlapping_builds([late, short, long]) == [(long, short), (long, late)]
    first, longer, inside = (
        BuildInterval(1, 1, "E", 0.0, 2.0),
        BuildInterval(1, 2, "E", 1.0, 10.0),
        BuildInterval(1, 3, "E", 5.0, 6.0),
    )
    assert overlapping_builds([first, longer, inside]) == [(first, longer), (longer, inside)]
