"""A call bounded in wall-clock time: run on a daemon thread, given up (and left to finish) at its bound."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Bounded", "NotAnswered", "within"]

T = TypeVar("T")


class NotAnswered(TimeoutError):
    """The call did not return within its bound."""


class Bounded(Generic[T]):
    """``call()`` started on a daemon thread; :meth:`result` waits for it at most until the bound."""

    def __init__(self, call: Callable[[], T], name: str) -> None:
        self._call = call
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name=f"doctor-check-{name}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as err:
            self._error = err
        finally:
            self._done.set()

    def result(self, seconds: float) -> T:
        """The call's value (or its exception); :class:`NotAnswered` if it is still running after ``seconds``."""
        if not self._done.wait(max(seconds, 0.0)):
            raise NotAnswered(f"no answer within {seconds:g} s")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def within(seconds: float, call: Callable[[], T], name: str) -> T:
    """``call()``'s value if it returns within ``seconds``, else :class:`NotAnswered` (the thread keeps running)."""
    return Bounded(call, name).result(seconds)
