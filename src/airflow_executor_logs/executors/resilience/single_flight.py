"""
Identical concurrent calls share one: the first caller runs it, the others wait for its outcome.

For reads whose answer is a finished value (a short-lived executor's lists of lines): ten people
polling one task at the same moment cost one short-lived executor, not ten. Streamed reads share a
fetch instead (:mod:`.coalescing`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

__all__ = ["SingleFlight", "SingleFlightTimeout"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlightTimeout(TimeoutError):
    """A caller waited ``wait`` seconds for the identical call in flight, which had not finished."""


class SingleFlight(Generic[K, T]):
    """Calls in flight, by key; equal keys share one call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[K, Future[T]] = {}
        #: Calls answered with another caller's outcome (for tests and diagnostics).
        self.shared = 0

    def call(self, key: K, fn: Callable[[], T], *, wait: float) -> T:
        """
        ``fn()``, or the outcome of the identical call in flight (its value, or its exception again).

        :raises SingleFlightTimeout: that call had no outcome within ``wait`` seconds.
        """
        with self._lock:
            running = self._calls.get(key)
            if running is None:
                mine: Future[T] = Future()
                self._calls[key] = mine
            else:
                self.shared += 1
        if running is not None:
            try:
                return running.result(timeout=wait)
            except FutureTimeout:
                raise SingleFlightTimeout(f"an identical read in flight did not finish within {wait:g} s") from None
        try:
            value = fn()
        except BaseException as err:
            mine.set_exception(err)
            raise
        else:
            mine.set_result(value)
            return value
        finally:
            with self._lock:
                del self._calls[key]
