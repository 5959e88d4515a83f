"""A call bounded in wall-clock time: its value, its exception, or NotAnswered at the bound."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_executor_logs.cli.doctor.check.bounded import Bounded, NotAnswered, within


def test_value_and_exception() -> None:
    assert within(5, lambda: 42, "answer") == 42
    with pytest.raises(ZeroDivisionError):
        within(5, lambda: 1 / 0, "raises")


def test_a_call_past_its_bound_is_left_running() -> None:
    release = threading.Event()
    started = time.monotonic()
    call = Bounded(lambda: release.wait(30), "hangs")
    with pytest.raises(NotAnswered, match=r"no answer within 0\.2 s"):
        call.result(0.2)
    assert time.monotonic() - started < 5
    release.set()
    assert call.result(5) is True  # it finished on its own thread, and its value is still there
