"""
Concurrent identical reads share one request: a shared buffered fetch with a cursor per waiter.

The first read of a key starts a fetch on a pooled thread; reads of the same key that arrive while
it runs join it. The fetch opens the source (its API calls), then reads batches of lines only as far
as the waiters have asked, plus a bounded read-ahead, into one buffer that every waiter reads with
its own cursor, so all get identical answers. Lines every waiter has read are dropped, so memory
stays bounded by the read-ahead; from then on the fetch takes no new waiters (they would need the
first lines). Each waiter keeps its own deadline: one that leaves (its
deadline passed, or its consumer stopped) does not end the fetch for the others. The fetch works to
the latest deadline of the waiters still there, and stops (closing its source) when none is left.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Generator, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from airflow_executor_logs.executors.resilience.deadline import (
    READ_AHEAD,
    Deadline,
    LatestDeadline,
    ReadDeadlineExceeded,
)

T = TypeVar("T")
#: What identifies one fetch: equal keys share it.
K = TypeVar("K", bound=Hashable)

__all__ = ["Coalescer", "SharedFetch", "Waiter"]

#: Threads fetching at once per coalescer; the bulkhead and the deadline bound them well below this.
MAX_FETCHES = 32

#: Opens a source under a deadline: an iterator of batches of lines.
Opener = Callable[[Deadline], Iterator[list[T]]]


class Waiter(Generic[T]):
    """One read's view of a shared fetch, bounded by its own deadline."""

    def __init__(self, fetch: SharedFetch[T], deadline: Deadline) -> None:
        self._fetch = fetch
        self.deadline = deadline
        self.cursor = 0
        self.gone = False

    @property
    def active(self) -> bool:
        return not self.gone and not self.deadline.expired

    def opened(self) -> None:
        """
        Wait until the source is open and has lines for this waiter or has ended (one wake-up, not two, for
        a read's first lines); raise what opening it raised, or at this waiter's deadline.
        """
        fetch = self._fetch

        def ready() -> bool:
            return fetch._opened and (
                fetch._error is not None or fetch._ended is not False or self.cursor < fetch._end_index()
            )

        with fetch._cond:
            if not fetch._cond.wait_for(ready, max(self.deadline.left(), 0.0)):
                self._leave_locked()
                raise ReadDeadlineExceeded(self.deadline.seconds)
            if fetch._error is not None:
                self._leave_locked()
                raise fetch._error

    def lines(self) -> Generator[T, None, None]:
        """The fetched lines from the first, as this waiter consumes them; leaves the fetch when closed."""
        fetch = self._fetch
        try:
            while True:
                with fetch._cond:
                    while self.cursor >= fetch._end_index() and fetch._ended is False:
                        left = self.deadline.left()
                        if left <= 0:
                            raise ReadDeadlineExceeded(self.deadline.seconds)
                        fetch._cond.notify_all()  # the fetch may be waiting for someone to want more
                        fetch._cond.wait(left)
                    batch = fetch._lines[self.cursor - fetch._base :]
                    self.cursor += len(batch)
                    fetch._trim()
                    ended = fetch._ended
                if batch:
                    yield from batch
                    continue
                if ended is True:
                    return
                raise ended  # type: ignore[misc]  # the error that ended the fetch
        finally:
            self.leave()

    def leave(self) -> None:
        with self._fetch._cond:
            self._leave_locked()

    def _leave_locked(self) -> None:
        self.gone = True
        self._fetch._cond.notify_all()


class SharedFetch(Generic[T]):
    """One source opened once and buffered for every waiter."""

    def __init__(self, open_source: Opener[T], first: Deadline, on_end: Callable[[SharedFetch[T]], None]) -> None:
        self._open_source = open_source
        self._base = 0  # the index of the first line still buffered
        self._on_end = on_end
        self._cond = threading.Condition()
        self._waiters: list[Waiter[T]] = []
        self._opened = False
        self._error: BaseException | None = None
        self._lines: list[T] = []
        self._ended: bool | BaseException = False
        self._joinable = True
        self.deadline: Deadline = LatestDeadline(lambda: (waiter.deadline for waiter in self._active()), first)

    def join(self, deadline: Deadline) -> Waiter[T] | None:
        """A waiter for this fetch, or ``None`` once it no longer takes new ones."""
        with self._cond:
            if self._waiters and not self._active():
                self._joinable = False  # every waiter left: its calls run out their time for nobody
            if not self._joinable:
                return None
            waiter = Waiter(self, deadline)
            self._waiters.append(waiter)
            return waiter

    def _active(self) -> list[Waiter[T]]:
        return [waiter for waiter in self._waiters if waiter.active]

    def _end_index(self) -> int:
        return self._base + len(self._lines)

    def _trim(self) -> None:
        """Called with the lock held: drop the lines every waiter still here has read."""
        readers = [waiter.cursor for waiter in self._waiters if not waiter.gone]
        done = (min(readers) if readers else self._end_index()) - self._base
        if done >= READ_AHEAD:
            del self._lines[:done]
            self._base += done
            self._joinable = False  # a new waiter would need the first lines

    def _run(self) -> None:
        source: Iterator[list[T]] | None = None
        try:
            try:
                source = self._open_source(self.deadline)
            except BaseException as err:
                with self._cond:
                    self._error, self._opened = err, True
                return
            with self._cond:
                self._opened = True  # waiters wake at the first batch, the end or an error (``Waiter.opened``)
            while self._wanted():
                try:
                    batch = next(source)
                except StopIteration:
                    self._end(True)
                    return
                except Exception as err:
                    self._end(err)
                    return
                with self._cond:
                    self._lines.extend(batch)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._joinable = False
                self._cond.notify_all()
            close = getattr(source, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()  # an unfinished source (every waiter gone) gives its connection up
            self._on_end(self)

    def _wanted(self) -> bool:
        """Wait until a waiter wants more lines (``True``) or none is left (``False``)."""
        with self._cond:
            while True:
                active = self._active()
                if not active:
                    return False
                if any(waiter.cursor + READ_AHEAD > self._end_index() for waiter in active):
                    return True
                self._cond.wait(max(self.deadline.left(), 0.001))

    def _end(self, how: bool | BaseException) -> None:
        with self._cond:
            self._ended = how
            self._joinable = False
            self._cond.notify_all()


class Coalescer(Generic[K, T]):
    """The fetches in flight, by key; thread-safe."""

    def __init__(self, max_fetches: int = MAX_FETCHES) -> None:
        self._fetches: dict[K, SharedFetch[T]] = {}
        self._lock = threading.Lock()
        self._max_fetches = max_fetches
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    def join(self, key: K, deadline: Deadline) -> Waiter[T] | None:
        """A waiter on the fetch of ``key`` in flight, if there is one that still takes waiters."""
        with self._lock:
            fetch = self._fetches.get(key)
        return None if fetch is None else fetch.join(deadline)

    def start(self, key: K, open_source: Opener[T], deadline: Deadline) -> tuple[Waiter[T], bool]:
        """Join the fetch of ``key`` or start one; the waiter, and whether it joined one in flight."""
        with self._lock:
            fetch = self._fetches.get(key)
            waiter = None if fetch is None else fetch.join(deadline)
            if waiter is not None:
                return waiter, True
            fetch = SharedFetch(open_source, deadline, lambda ended: self._forget(key, ended))
            waiter = fetch.join(deadline)
            assert waiter is not None
            self._fetches[key] = fetch
            if self._pool is None or self._pool_pid != os.getpid():  # a forked child has none of its threads
                self._pool = ThreadPoolExecutor(self._max_fetches, thread_name_prefix="executor-logs-fetch")
                self._pool_pid = os.getpid()
            pool = self._pool
        pool.submit(fetch._run)
        return waiter, False

    def in_flight(self) -> int:
        with self._lock:
            return len(self._fetches)

    def _forget(self, key: K, fetch: SharedFetch[T]) -> None:
        with self._lock:
            if self._fetches.get(key) is fetch:
                del self._fetches[key]
