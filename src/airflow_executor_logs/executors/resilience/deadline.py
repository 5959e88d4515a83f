"""
The deadline of one read: the bound, on the monotonic clock, every piece of the read path works to.

It imports nothing from the read path (only the name of the settings section, ``config.SECTION``, for
the wording of a timeout), so every layer can use it. It also holds the
two things every layer says the same way about deadlines: how far a stream reads ahead of its
consumer (:data:`READ_AHEAD`), and how a timeout is worded (:func:`timed_out`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from airflow_executor_logs.config import SECTION

__all__ = ["READ_AHEAD", "Deadline", "LatestDeadline", "ReadDeadlineExceeded", "timed_out", "timed_out_briefly"]

#: Lines read ahead of the furthest consumer, per stream: bounds the memory of a buffered stream.
READ_AHEAD = 512


class ReadDeadlineExceeded(TimeoutError):
    """The deadline of one read passed."""


class Deadline:
    """A deadline on a monotonic clock (``time.monotonic`` by default), started when it is made."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started = clock()

    def left(self) -> float:
        """Seconds left, never below zero."""
        return max(self.seconds - (self.clock() - self.started), 0.0)

    def remaining(self) -> float:
        """Seconds left; raises :class:`ReadDeadlineExceeded` once there are none."""
        left = self.left()
        if left <= 0:
            raise ReadDeadlineExceeded(self.seconds)
        return left

    def request_timeouts(self, connect_timeout: float) -> tuple[float, float]:
        """``(connect, read)`` timeouts for one API call: neither reaches past the deadline."""
        remaining = self.remaining()
        return min(connect_timeout, remaining), remaining

    @property
    def expired(self) -> bool:
        return self.left() <= 0


class LatestDeadline(Deadline):
    """The latest of several deadlines that come and go: work shared by several reads lasts as long as one needs it."""

    def __init__(self, deadlines: Callable[[], Iterable[Deadline]], first: Deadline) -> None:
        super().__init__(first.seconds, first.clock)
        self._deadlines = deadlines

    def left(self) -> float:
        return max((deadline.left() for deadline in self._deadlines()), default=0.0)


def timed_out(source: str, seconds: float, served: int | None = None, *, option: str = "read_timeout") -> str:
    """
    The one wording of a timeout: what timed out, after how long, the option, and, for a stream cut at
    the deadline, the ``served`` lines above it. What else is shown (the last good lines) is said where
    it is added (:mod:`~airflow_executor_logs.executors.problem_answers`). ``option`` names the deadline's setting.
    """
    text = f"{source} timed out after {seconds:g} s ([{SECTION}] {option})"
    if served:
        text += f"; showing the {served} lines read before the deadline"
    return text


def timed_out_briefly(source: str, seconds: float) -> str:
    """:func:`timed_out` in the few words of a log line: ``"Kubernetes API timed out (5 s)"``."""
    return f"{source} timed out ({seconds:g} s)"
