"""Identical concurrent calls share one; different keys, and calls after it, run their own."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_executor_logs.executors.resilience.single_flight import SingleFlight, SingleFlightTimeout


def test_identical_concurrent_calls_share_one_and_its_value() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release, started = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        started.set()
        assert release.wait(30)
        return 42

    with ThreadPoolExecutor(5) as pool:
        leader = pool.submit(flight.call, "k", slow, wait=30)
        assert started.wait(30)
        followers = [pool.submit(flight.call, "k", slow, wait=30) for _ in range(4)]
        while flight.shared < 4:
            threading.Event().wait(0.01)
        release.set()
        assert [leader.result(), *(f.result() for f in followers)] == [42] * 5
    assert calls == [1]


def test_the_leaders_exception_reaches_the_followers_and_the_next_call_runs_anew() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release, started = threading.Event(), threading.Event()

    def fails() -> int:
        started.set()
        assert release.wait(30)
        raise KeyError("boom")

    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(flight.call, "k", fails, wait=30)
        assert started.wait(30)
        follower = pool.submit(flight.call, "k", fails, wait=30)
        while flight.shared < 1:
            threading.Event().wait(0.01)
        release.set()
        for future in (leader, follower):
            with pytest.raises(KeyError, match="boom"):
                future.result()
    assert flight.call("k", lambda: 7, wait=1) == 7


def test_a_follower_stops_waiting_after_wait_seconds() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release, started = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(30)
        return 1

    with ThreadPoolExecutor(1) as pool:
        leader = pool.submit(flight.call, "k", slow, wait=30)
        assert started.wait(30)
        with pytest.raises(SingleFlightTimeout, match=r"did not finish within 0\.1 s"):
            flight.call("k", slow, wait=0.1)
        release.set()
        assert leader.result() == 1


def test_different_keys_do_not_share() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    assert [flight.call(key, lambda key=key: key, wait=1) for key in "ab"] == ["a", "b"]
    assert flight.shared == 0
