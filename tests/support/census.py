"""
A census of the product code one read runs: files, cross-file hops, threads and per-line wrappers.

Recorded with ``sys.setprofile`` on the calling thread and ``threading.setprofile`` on every thread started
while the census is installed (the fetch pools start theirs on a first read: install it before that read).
Only code under ``src/airflow_executor_logs`` counts, and not on ``BACKGROUND`` threads; a child process (a
short-lived executor's) is not seen.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import airflow_executor_logs

PRODUCT = str(Path(airflow_executor_logs.__file__).resolve().parent) + "/"
#: Threads whose work is the process's housekeeping, not the read's: the helper keeper reaps on its own clock,
#: so whether its poll falls inside a read is chance (and it may have started before the census).
BACKGROUND = frozenset({"executor-logs-zygote-keeper"})


def _product_file(frame: FrameType) -> str | None:
    filename = frame.f_code.co_filename
    return filename[len(PRODUCT) :] if filename.startswith(PRODUCT) else None


def _name(frame: FrameType) -> str:
    return getattr(frame.f_code, "co_qualname", frame.f_code.co_name)


@dataclass
class Census:
    """What one recorded stretch of code ran; ``lines`` is how many log lines it answered with."""

    files: set[str] = field(default_factory=set)
    calls: set[tuple[str, str]] = field(default_factory=set)  # ("file:function", "file:function"), files differ
    threads: set[int] = field(default_factory=set)
    yields: Counter[str] = field(default_factory=Counter)  # product generator or __next__ -> values it gave
    request_thread: int = 0

    @property
    def hops(self) -> set[tuple[str, str]]:
        """The file-to-file edges of :attr:`calls`: from a product file to another it calls into."""
        return {(a.split(":", 1)[0], b.split(":", 1)[0]) for a, b in self.calls}

    @property
    def other_threads(self) -> int:
        return len(self.threads - {self.request_thread})

    def wrappers(self, lines: int) -> list[str]:
        """The product iterators every one of ``lines`` passed (each gave at least that many values)."""
        return sorted(name for name, count in self.yields.items() if lines and count >= lines)


class ReadPathCensus:
    """``with census.recording() as seen:`` records into ``seen``; outside it, the profiler records nothing."""

    def __init__(self) -> None:
        self._current: Census | None = None

    def _profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        seen = self._current
        if seen is None or event not in ("call", "return"):
            return
        here = _product_file(frame)
        if here is None or threading.current_thread().name in BACKGROUND:
            return
        callee = f"{here}:{_name(frame)}"
        if event == "return":
            if frame.f_code.co_flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
                seen.yields[callee] += 1  # a generator's "return" event is each yield, and its end
            return
        seen.files.add(here)
        seen.threads.add(threading.get_ident())
        if frame.f_code.co_name == "__next__":
            seen.yields[callee] += 1  # an iterator class's step
        caller = frame.f_back
        while caller is not None and _product_file(caller) is None:
            caller = caller.f_back  # through core, the stdlib and libraries to the product code that led here
        if caller is not None and (there := _product_file(caller)) != here:
            seen.calls.add((f"{there}:{_name(caller)}", callee))

    @contextlib.contextmanager
    def installed(self) -> Iterator[ReadPathCensus]:
        """The profiler on this thread and on every thread started meanwhile (recording only in ``recording``)."""
        previous = sys.getprofile()
        threading.setprofile(self._profile)
        sys.setprofile(self._profile)
        try:
            yield self
        finally:
            sys.setprofile(previous)
            threading.setprofile(None)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def recording(self) -> Iterator[Census]:
        seen = Census(request_thread=threading.get_ident())
        self._current = seen
        try:
            yield seen
        finally:
            self._current = None
