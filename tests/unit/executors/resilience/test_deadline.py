"""One read's deadline, the latest of several, the timeouts of one API call, and the one timeout wording."""

from __future__ import annotations

import pytest

from airflow_executor_logs.executors.resilience.deadline import (
    Deadline,
    LatestDeadline,
    ReadDeadlineExceeded,
    timed_out,
)
from airflow_executor_logs_testing.kube_client import FakeClock


def test_deadline_with_an_injected_clock() -> None:
    now = [10.0]
    deadline = Deadline(2.0, clock=lambda: now[0])
    assert deadline.left() == 2.0
    now[0] += 1.5
    assert deadline.remaining() == pytest.approx(0.5)
    assert not deadline.expired
    now[0] += 0.5
    assert deadline.expired
    with pytest.raises(ReadDeadlineExceeded):
        deadline.remaining()


def test_request_timeouts_never_reach_past_the_deadline() -> None:
    clock = FakeClock()
    deadline = Deadline(5.0, clock)
    assert deadline.request_timeouts(1.0) == (1.0, 5.0)
    clock.advance(4.5)
    assert deadline.request_timeouts(1.0) == (pytest.approx(0.5), pytest.approx(0.5))
    clock.advance(0.5)
    with pytest.raises(ReadDeadlineExceeded):
        deadline.request_timeouts(1.0)


def test_the_latest_deadline_follows_the_deadlines_still_there() -> None:
    clock = FakeClock()
    short, long = Deadline(1.0, clock), Deadline(3.0, clock)
    present = [short, long]
    latest = LatestDeadline(lambda: present, short)
    assert latest.left() == 3.0
    present.remove(long)  # the read with the later deadline left
    assert latest.left() == 1.0
    clock.advance(1.0)
    assert latest.expired
    present.clear()
    assert latest.left() == 0.0


def test_one_wording_for_a_timeout() -> None:
    assert timed_out("Reading from k8s pod logs", 5.0) == (
        "Reading from k8s pod logs timed out after 5 s ([executor_logs] read_timeout)"
    )
    assert timed_out("blocks_halfway", 0.25, 3) == (
        "blocks_halfway timed out after 0.25 s ([executor_logs] read_timeout); "
        "showing the 3 lines read before the deadline"
    )
    # nothing served: what is shown instead is said where it is added (the last good lines, or none)
    assert timed_out("Reading from k8s pod logs", 5.0, 0) == timed_out("Reading from k8s pod logs", 5.0)
