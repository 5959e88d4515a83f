"""
What one worker process remembers of the answers it served, and how a failed read is answered.

:class:`AnswerMemory` is the pipeline's default answer policy. Per :class:`~.answers.ReadKey` (executor,
task instance, try) it keeps:

* the last good lines (:mod:`.last_good_lines`), shown above a transient problem's line;
* the last answer, reused for identical reads within ``answer_ttl`` seconds, whatever reader gave it:
  however many people watch a task, a worker reads it at most once per ``answer_ttl``;
* while people keep watching, the previous answer is what identical polls get while its refresh is in
  flight (stale while revalidate): a slow read (a short-lived executor, a slow Kubernetes API) holds up
  only the poll that started it;
* the one table of reads in flight: without a stand-in, an identical poll waits for the read in flight
  (here only) and is given its answer, so concurrent polls cost one read (one short-lived executor).

Every problem answer leaves here rendered once (:func:`~.problem_answers.rendered`): the problem as a
source message and as one line at the end of the log. Answers given without a read are counted
(``reused_answers``, ``stand_ins``, ``shared_reads``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from airflow_executor_logs import metrics as metric_names
from airflow_executor_logs.executors.answers import Answer, ReadKey
from airflow_executor_logs.executors.last_good_lines import LastGoodLines, Recording, Remembered, recorded
from airflow_executor_logs.executors.problem_answers import rendered
from airflow_executor_logs.executors.reader_protocol import Outcome, ReadReport, utc_now
from airflow_executor_logs.metrics import Metrics, MetricsSink

if TYPE_CHECKING:
    from airflow_executor_logs.config import Settings

__all__ = ["AnswerMemory"]

#: At most this many problem answers are remembered for reuse (each lives ``answer_ttl`` seconds).
MAX_RECENT_PROBLEMS = 4096
#: The previous answer stands in during its refresh only if that refresh began less than this many
#: ``answer_ttl`` after the answer landed: people were still watching. After a pause, polls wait for the
#: fresh answer rather than see an old one.
STANDS_IN_FOR = 2.0


@dataclass
class _Flight:
    """
    A read in flight, the one entry identical polls share. ``previous`` stands in for it meanwhile, until
    ``stands_in_until`` (monotonic): past the longest a read may take, an answer never read to its end no
    longer holds later polls on the old answer. Its state changes under ``changed``: ``answered`` once
    its read call returned, ``landed`` once its answer is kept (or served unkept); ``result`` is what
    polls waiting for it are given (the answer kept, or the problem answered), if anything.
    """

    previous: Remembered | None
    stands_in_until: float
    changed: threading.Condition = field(default_factory=threading.Condition)
    answered: bool = False
    landed: bool = False
    result: tuple[Remembered, bool] | None = None


class AnswerMemory:
    """
    The default answer policy: reuse an answer within ``answer_ttl``, share an identical read in flight,
    keep the last good lines, and answer a problem with them and a line saying what failed.

    :param settings: the settings in force (read on every answer: options change without a restart).
    :param clock: the monotonic clock (ages, TTLs); ``wall``: the UTC wall clock (the "read at" time).
    :param metrics: where answers given without a read are counted (reused, stand-ins, shared).
    """

    #: Seconds between sweeps of expired entries (they are also dropped when looked up).
    SWEEP_EVERY = 10.0

    def __init__(
        self,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
        metrics: MetricsSink | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._wall = wall
        self.metrics: MetricsSink = metrics or Metrics()
        self.lines = LastGoodLines(clock)
        self._problems: OrderedDict[ReadKey, tuple[float, Remembered]] = OrderedDict()
        #: The one table of reads in flight, by key.
        self._reading: dict[ReadKey, _Flight] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def answer(self, key: ReadKey, read: Callable[[], Answer], *, lasts: float) -> Answer:
        settings = self._settings()
        now = self._clock()
        self._sweep(now, settings)
        recent = self._recent(key, now, settings.answer_ttl)
        if recent is not None:
            return recent
        flight = self._in_flight(key, settings, lasts)
        if isinstance(flight, Answer):  # a stand-in, or the answer of the identical read this poll waited for
            return flight
        started, started_at = self._clock(), self._wall()
        try:
            answer = read()
        except BaseException:
            self._landed(key, flight)
            raise
        if answer.outcome is not Outcome.SUCCESS:
            try:
                return self._problem(key, answer, settings, flight)
            finally:
                self._landed(key, flight)
        answer = self._keep(key, answer, started, started_at, settings, flight)
        with flight.changed:  # answered: an answer in memory (the list form) has landed by now
            flight.answered = True
            flight.changed.notify_all()
        return answer

    def _in_flight(self, key: ReadKey, settings: Settings, lasts: float) -> _Flight | Answer:
        """
        This read of ``key`` registered in flight; or, if an identical read is in flight, the previous
        answer if it stands in for that read, else that read's answer once it lands. A poll waits for it
        up to ``answer_ttl``, and longer (up to ``lasts``, its own deadline) while that read's call has not
        returned: a short-lived executor's read lands only then. If it lands with nothing to give (cut, too
        large), this poll reads on its own; if it does not land in time (an answer not read to its end), this
        poll reads in its place. Coalescing below shares a Kubernetes fetch between them (its lines, with a
        cursor each).
        """
        with self._lock:
            other = self._reading.get(key)
            if other is None:
                return self._register(key, settings.answer_ttl, lasts)
            stand_in = self._stand_in(key, other)
        if stand_in is not None:
            return self._reuse(key, stand_in, counters=(metric_names.STAND_INS,))
        with other.changed:
            if not other.changed.wait_for(lambda: other.landed, settings.answer_ttl):
                other.changed.wait_for(lambda: other.landed or other.answered, lasts)
            landed, result = other.landed, other.result
        if result is not None:
            entry, problem = result
            return self._reuse(key, entry, problem=problem, counters=(metric_names.SHARED_READS,))
        with self._lock:
            if not landed and self._reading.get(key) is other:  # never read to its end: stop waiting for it
                return self._register(key, settings.answer_ttl, lasts)
        return _Flight(None, 0.0)  # it kept nothing (cut, too large), or another poll reads now: read, unregistered

    def _register(self, key: ReadKey, ttl: float, lasts: float) -> _Flight:
        """A read of ``key`` in flight (under the lock): the answer now kept stands in for it, if recent."""
        previous = self.lines.reusable(key, STANDS_IN_FOR * ttl)
        flight = self._reading[key] = _Flight(previous, self._clock() + lasts)
        return flight

    def _stand_in(self, key: ReadKey, flight: _Flight) -> Remembered | None:
        """
        What stands in for ``flight`` (under the lock): the answer kept when it began, or one kept since
        (never an answer older than one this worker served: a read that landed unkept retires it).
        """
        if self._clock() >= flight.stands_in_until or flight.previous is None:
            return None
        return self.lines.reusable(key, math.inf)  # kept in landing order: never older than the one before

    def _landed(self, key: ReadKey, flight: _Flight) -> None:
        """``flight`` is over (its ``result`` set before): polls waiting for it go on."""
        with self._lock:
            if self._reading.get(key) is flight:
                del self._reading[key]
        with flight.changed:
            flight.landed = True
            flight.changed.notify_all()

    # ------------------------------------------------------------------ reuse within answer_ttl

    def _recent(self, key: ReadKey, now: float, ttl: float) -> Answer | None:
        with self._lock:
            problem = self._problems.get(key)
            if problem is not None and now - problem[0] >= ttl:
                del self._problems[key]
                problem = None
        if problem is not None:
            return self._reuse(key, problem[1], problem=True)
        good = self.lines.reusable(key, ttl)
        return None if good is None else self._reuse(key, good)

    def _reuse(
        self, key: ReadKey, kept: Remembered, *, problem: bool = False, counters: tuple[str, ...] = ()
    ) -> Answer:
        """``kept`` given again (a problem's answer is never kept again), counted as reused and as ``counters``."""
        executor = key.executor.rpartition(".")[2]
        for counter in (metric_names.REUSED_ANSWERS, *counters):
            self.metrics.incr(counter, executor)
        messages, streams = kept.replay()
        if not problem:
            return Answer(messages, streams)
        report = ReadReport()
        report.problem(Outcome.REFUSED, "reused", transient=True)
        return Answer(messages, streams, report)

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
        self, key: ReadKey, answer: Answer, started: float, started_at: datetime, settings: Settings, flight: _Flight
    ) -> Answer:
        recording = Recording(
            answer,
            key=key,
            started=started,
            started_at=started_at,
            limit=settings.stale_lines_max_bytes,
            clock=self._clock,
            keep=lambda entry: self._remember(key, entry, settings, flight),
            landed=lambda: self._landed(key, flight),
        )
        return recorded(answer, recording)

    def _remember(self, key: ReadKey, entry: Remembered | None, settings: Settings, flight: _Flight) -> None:
        if entry is None:  # served, not kept (too large, or cut): the entry before is no longer the newest
            self.lines.retire(key)
        else:
            self.lines.put(key, entry, settings.stale_lines_max_bytes)
            flight.result = (entry, False)

    # ------------------------------------------------------------------ answering problems

    def _problem(self, key: ReadKey, answer: Answer, settings: Settings, flight: _Flight) -> Answer:
        report = answer.report
        now, at = self._clock(), self._wall()
        stale = self.lines.get(key, settings.stale_lines_ttl) if report.transient else None
        retry = max(report.retry_in or 0.0, settings.answer_ttl) if report.transient else None
        answered, line = rendered(answer, stale, now, at, retry)
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
        flight.result = (kept, True)
        return answered
