"""The last good lines: kept once every stream of a good answer ended, bounded by bytes, LRU first out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.last_good_lines import LastGoodLines, Recording, Remembered, recorded
from airflow_executor_logs.executors.reader_protocol import TextStream, TextStreams
from airflow_executor_logs_testing.kube_client import FakeClock

AT = datetime(2026, 12, 5, tzinfo=timezone.utc)


def key(n: int = 0) -> ReadKey:
    return ReadKey("a.K", "dag", f"task-{n}", "run", -1, 1)


def entry(size: int, read_mono: float = 0.0, landed_mono: float | None = None) -> Remembered:
    return Remembered(("m",), (("x\n",),), False, 1, size, AT, read_mono, landed_mono)


class Kept:
    """What a recording handed over: the entries kept and how many times it landed."""

    def __init__(self) -> None:
        self.entries: list[Remembered | None] = []
        self.landed = 0

    def recording(self, answer: Answer, clock: FakeClock, limit: int = 10_000) -> Recording:
        return Recording(
            answer,
            key=key(),
            started=clock(),
            started_at=AT,
            limit=limit,
            clock=clock,
            keep=self.entries.append,
            landed=self.land,
        )

    def land(self) -> None:
        self.landed += 1


def test_entries_are_bounded_by_bytes_least_recently_used_first_out() -> None:
    clock = FakeClock()
    lines = LastGoodLines(clock)
    for n in range(3):
        lines.put(key(n), entry(400, read_mono=clock()), max_bytes=1000)
    assert len(lines) == 2
    assert lines.bytes == 800
    assert lines.get(key(0), ttl=60) is None
    lines.get(key(1), ttl=60)  # used: now the most recent
    lines.put(key(3), entry(400, read_mono=clock()), max_bytes=1000)
    assert lines.get(key(1), ttl=60) is not None
    assert lines.get(key(2), ttl=60) is None


def test_age_counts_from_the_read_for_stale_lines_and_from_its_landing_for_reuse() -> None:
    clock = FakeClock()
    lines = LastGoodLines(clock)
    lines.put(key(), entry(100, read_mono=clock(), landed_mono=clock() + 2.0), max_bytes=1000)
    clock.advance(2.5)
    assert lines.reusable(key(), ttl=1.0) is not None  # landed 0.5 s ago
    assert lines.get(key(), ttl=2.0, drop=False) is None  # read 2.5 s ago
    assert len(lines) == 1  # not dropped
    lines.expire(ttl=2.0)
    assert len(lines) == 0


def test_a_streamed_answer_is_kept_once_every_stream_ended() -> None:
    clock, kept = FakeClock(), Kept()
    answer = Answer(["m"], [iter(["a\n", "b\n"]), iter(["c\n"])])
    teed = recorded(answer, kept.recording(answer, clock))
    assert list(teed.streams[0]) == ["a\n", "b\n"]
    assert kept.entries == []
    clock.advance(3)
    assert list(teed.streams[1]) == ["c\n"]
    (only,) = kept.entries
    assert only is not None
    assert only.streams == (("a\n", "b\n"), ("c\n",))
    assert only.lines == 3
    assert only.landed == clock()  # when its last stream ended
    assert kept.landed == 1


def test_a_stream_closed_early_keeps_nothing_retires_the_older_entry_and_lets_identical_reads_go_on() -> None:
    clock, kept = FakeClock(), Kept()

    def lines() -> Iterator[str]:
        yield "a\n"
        yield "b\n"

    answer = Answer(["m"], [lines()])
    teed = recorded(answer, kept.recording(answer, clock))
    stream = iter(teed.streams[0])
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    assert kept.entries == [None]  # served, not kept: the entry before is no longer the newest
    assert kept.landed == 1


def test_a_read_over_its_limit_is_handed_over_as_none_so_older_lines_go() -> None:
    clock, kept = FakeClock(), Kept()
    answer = Answer(["m"], [iter([f"line {n}\n" for n in range(100)])])
    list(recorded(answer, kept.recording(answer, clock, limit=1024)).streams[0])
    assert kept.entries == [None]


def test_an_answer_in_the_list_form_is_kept_as_it_came() -> None:
    clock, kept = FakeClock(), Kept()
    answer = Answer(["m"], TextStreams([TextStream("a\nb"), TextStream("c")]))
    assert recorded(answer, kept.recording(answer, clock)) is answer
    (only,) = kept.entries
    assert only is not None
    assert only.as_text
    messages, streams = only.replay()
    assert messages == ["m"]
    assert [stream.text for stream in streams] == ["a\nb", "c"]  # type: ignore[union-attr]


def test_an_entry_counts_its_key_strings() -> None:
    clock, kept = FakeClock(), Kept()
    run_id = "scheduled__2026-12-05T12:00:00+00:00"
    for key_of_read in (ReadKey("a.K", "d", "t", "r", -1, 1), ReadKey("a.K", "d", "t", run_id * 3, -1, 1)):
        answer = Answer(["m"], TextStreams([TextStream("a")]))
        recording = Recording(
            answer,
            key=key_of_read,
            started=clock(),
            started_at=AT,
            limit=10_000,
            clock=clock,
            keep=kept.entries.append,
            landed=kept.land,
        )
        recorded(answer, recording)
    short, long = kept.entries
    assert short is not None
    assert long is not None
    assert long.size - short.size == len(run_id * 3) - len("r")
