"""
What one worker process remembers of the answers it served, and how a failed read is answered.

:class:`AnswerMemory` is the pipeline's default answer policy. Per :class:`~.answers.ReadKey` (executor,
task instance, try) it keeps:

* the last good lines (:mod:`.last_good_lines`), shown above a transient problem's line;
* the last answer, reused for identical reads within ``answer_ttl`` seconds, whatever reader gave it:
  however many people watch a task, a worker reads it at most once per ``answer_ttl``;
* while people keep watching, the previous answer is what identical polls get while its refresh is in
  flight (stale while revalidate): a slow read (a short-lived executor, a slow Kubernetes API) holds up
  only the poll that started it.

Every problem answer leaves here with the problem as a source message and as one line at the end of the
log (:mod:`.problem_answers`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.last_good_lines import LastGoodLines, Recording, Remembered, recorded
from airflow_executor_logs.executors.problem_answers import problem_answer, problem_line
from airflow_executor_logs.executors.reader_protocol import Outcome, ReadReport, notice, utc_now

if TYPE_CHECKING:
    from airflow_executor_logs.config import Settings

__all__ = ["AnswerMemory"]

#: At most this many problem answers are remembered for reuse (each lives ``answer_ttl`` seconds).
MAX_RECENT_PROBLEMS = 4096
#: The previous answer stands in during its refresh only if that refresh began less than this many
#: ``answer_ttl`` after the answer landed: people were still watching. After a pause, polls wait for the
#: fresh answer rather than see an old one.
STANDS_IN_FOR = 2.0


@dataclass(frozen=True)
class _Flight:
    """
    A read in flight: ``done`` is set once its answer is kept; ``previous`` stands in for it meanwhile,
    until ``stands_in_until`` (monotonic): past the longest a read may take, an answer never read to its
    end no longer holds later polls on the old answer.
    """

    done: threading.Event
    previous: Remembered | None
    stands_in_until: float


class AnswerMemory:
    """
    The default answer policy: reuse an answer within ``answer_ttl``, keep the last good lines, and answer
    a problem with them and a line saying what failed.

    :param settings: the settings in force (read on every answer: options change without a restart).
    :param clock: the monotonic clock (ages, TTLs); ``wall``: the UTC wall clock (the "read at" time).
    """

    #: Seconds between sweeps of expired entries (they are also dropped when looked up).
    SWEEP_EVERY = 10.0

    def __init__(
        self,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._wall = wall
        self.lines = LastGoodLines(clock)
        self._problems: OrderedDict[ReadKey, tuple[float, Remembered]] = OrderedDict()
        self._reading: dict[ReadKey, _Flight] = {}
        self._lock = threading.Lock()
        self._swept = clock()
        #: Answers given without reading (reused within ``answer_ttl``), for tests and diagnostics.
        self.reused = 0
        #: Of those, answers given while their refresh was in flight.
        self.stood_in = 0

    def answer(self, key: ReadKey, read: Callable[[], Answer], *, lasts: float) -> Answer:
        settings = self._settings()
        now = self._clock()
        self._sweep(now, settings)
        recent = self._recent(key, now, settings.answer_ttl)
        if recent is not None:
            return recent
        done = self._in_flight(key, settings, lasts)
        if isinstance(done, Answer):  # the previous answer, while its refresh is in flight
            return done
        if done is None:  # an identical read was in flight and has answered: reuse its answer
            recent = self._recent(key, self._clock(), settings.answer_ttl)
            if recent is not None:
                return recent
            done = threading.Event()  # it kept nothing (cut, too large): read, unregistered
        started, started_at = self._clock(), self._wall()
        try:
            answer = read()
        except BaseException:
            self._landed(key, done)
            raise
        if answer.outcome is Outcome.SUCCESS:
            return self._keep(key, answer, started, started_at, settings, lambda: self._landed(key, done))
        try:
            return self._problem(key, answer, settings)
        finally:
            self._landed(key, done)

    def _in_flight(self, key: ReadKey, settings: Settings, lasts: float) -> threading.Event | Answer | None:
        """
        Register this read of ``key`` (its event, set once its answer is kept). If an identical read is
        in flight: the previous answer if it stands in for that read (for at most ``lasts`` seconds, the
        read's own deadline); otherwise wait up to ``answer_ttl`` for it and return ``None`` (its answer
        may then be reused).
        Coalescing shares only requests still open; this also covers the moment between a fetch's end
        and its answer being kept, and readers without coalescing (a short-lived executor).
        """
        wait = settings.answer_ttl
        with self._lock:
            other = self._reading.get(key)
            if other is None:
                return self._register(key, wait, lasts)
            stand_in = self._stand_in(key, other)
        if stand_in is not None:
            return self._reuse(stand_in, stood_in=True)
        if other.done.wait(wait):
            return None
        with self._lock:  # that read's answer was never read to its end: stop waiting for it
            if self._reading.get(key) is other:
                return self._register(key, wait, lasts)
        return threading.Event()

    def _register(self, key: ReadKey, ttl: float, lasts: float) -> threading.Event:
        """A read of ``key`` in flight (under the lock): the answer now kept stands in for it, if recent."""
        previous = self.lines.reusable(key, STANDS_IN_FOR * ttl)
        flight = self._reading[key] = _Flight(threading.Event(), previous, self._clock() + lasts)
        return flight.done

    def _stand_in(self, key: ReadKey, flight: _Flight) -> Remembered | None:
        """
        What stands in for ``flight`` (under the lock): the answer kept when it began, or one kept since
        (never an answer older than one this worker served: a read that landed unkept retires it).
        """
        if self._clock() >= flight.stands_in_until or flight.previous is None:
            return None
        return self.lines.reusable(key, math.inf)  # kept in landing order: never older than the one before

    def _landed(self, key: ReadKey, done: threading.Event) -> None:
        with self._lock:
            flight = self._reading.get(key)
            if flight is not None and flight.done is done:
                del self._reading[key]
        done.set()

    # ------------------------------------------------------------------ reuse within answer_ttl

    def _recent(self, key: ReadKey, now: float, ttl: float) -> Answer | None:
        with self._lock:
            problem = self._problems.get(key)
            if problem is not None and now - problem[0] >= ttl:
                del self._problems[key]
                problem = None
        if problem is not None:
            report = ReadReport()
            report.problem(Outcome.REFUSED, "reused", transient=True)  # the answer is a problem's: never kept
            messages, streams = problem[1].replay()
            with self._lock:
                self.reused += 1
            return Answer(messages, streams, report)
        good = self.lines.reusable(key, ttl)
        return None if good is None else self._reuse(good)

    def _reuse(self, good: Remembered, *, stood_in: bool = False) -> Answer:
        """``good`` given again, counted (``stood_in``: while its refresh is in flight)."""
        with self._lock:
            self.reused += 1
            self.stood_in += stood_in
        messages, streams = good.replay()
        return Answer(messages, streams)

    def _sweep(self, now: float, settings: Settings) -> None:
        with self._lock:
            while self._problems:
                key, (at, _) = next(iter(self._problems.items()))
                if now - at < settings.answer_ttl and len(self._problems) <= MAX_RECENT_PROBLEMS:
                    break
                del self._problems[key]
            if now - self._swept < self.SWEEP_EVERY:
                return
            self._swept = now
        self.lines.expire(settings.stale_lines_ttl)

    # ------------------------------------------------------------------ keeping good answers

    def _keep(
        self,
        key: ReadKey,
        answer: Answer,
        started: float,
        started_at: datetime,
        settings: Settings,
        landed: Callable[[], None],
    ) -> Answer:
        recording = Recording(
            answer,
            key=key,
            started=started,
            started_at=started_at,
            limit=settings.stale_lines_max_bytes,
            clock=self._clock,
            keep=lambda entry: self._remember(key, entry, settings),
            landed=landed,
        )
        return recorded(answer, recording)

    def _remember(self, key: ReadKey, entry: Remembered | None, settings: Settings) -> None:
        if entry is None:  # served, not kept (too large, or cut): the entry before is no longer the newest
            self.lines.retire(key)
        else:
            self.lines.put(key, entry, settings.stale_lines_max_bytes)

    # ------------------------------------------------------------------ answering problems

    def _problem(self, key: ReadKey, answer: Answer, settings: Settings) -> Answer:
        report = answer.report
        now, at = self._clock(), self._wall()
        stale = self.lines.get(key, settings.stale_lines_ttl) if report.transient else None
        retry = max(report.retry_in or 0.0, settings.answer_ttl) if report.transient else None
        line = notice(problem_line(report, stale, now, retry), "warning" if report.transient else "error", at=at)
        answered = problem_answer(answer, line, stale)
        kept = Remembered(  # reused within answer_ttl as it was given: the stale lines, then the line
            messages=tuple(answered.messages),
            streams=(*(stale.streams if stale else ()), (line,)),
            as_text=stale.as_text if stale else True,
            lines=0,
            size=0,
            read_at=at,
            read_mono=now,
        )
        with self._lock:
            self._problems[key] = (now, kept)
            self._problems.move_to_end(key)
        return answered
