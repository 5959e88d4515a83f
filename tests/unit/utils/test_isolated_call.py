"""``call_in_child``: the answer comes back, failures are described, and no lock or process is left behind."""

from __future__ import annotations

import io
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_executor_logs.utils.isolated_call import IsolatedCallFailed, IsolatedCallTimedOut, call_in_child
from tests.support.processes import child_pids, new_children, stopped_if_left


def test_the_answer_is_pickled_back() -> None:
    assert call_in_child(lambda: {"lines": ["a", "b"]}, deadline=10) == {"lines": ["a", "b"]}


def test_an_exception_is_described() -> None:
    def explode() -> None:
        raise KeyError("missing")

    with pytest.raises(IsolatedCallFailed, match="KeyError: 'missing'"):
        call_in_child(explode, deadline=10)


def test_an_answer_that_does_not_pickle_is_described() -> None:
    with pytest.raises(IsolatedCallFailed, match="could not be sent back"):
        call_in_child(lambda: threading.Lock(), deadline=10)


def test_the_deadline_stops_the_child() -> None:
    before = child_pids()
    started = time.monotonic()
    with pytest.raises(IsolatedCallTimedOut):
        call_in_child(lambda: time.sleep(60), deadline=0.5)
    assert time.monotonic() - started < 30  # generous for a loaded machine: the call sleeps for a minute
    assert not new_children(before)


def test_a_structlog_lock_held_by_another_thread_at_fork_does_not_block_the_child() -> None:
    """Under load, another thread is often writing a log line when a read forks (seen in a real API server)."""
    import structlog

    output = io.StringIO()
    held, release = threading.Event(), threading.Event()

    def write_slowly() -> None:
        lock = structlog._output._get_lock_for_file(output)  # the lock every logger on ``output`` shares
        with lock:
            held.set()
            release.wait(30)

    writer = threading.Thread(target=write_slowly, daemon=True)
    writer.start()
    assert held.wait(5)
    try:

        def log_in_child() -> str:
            structlog.PrintLogger(output).msg("from the child")
            return output.getvalue()

        assert call_in_child(log_in_child, deadline=5) == "from the child\n"
    finally:
        release.set()
        writer.join(5)


def _start_sleeper() -> int:
    """Start ``sleep 60`` under the calling process; its pid."""
    return subprocess.Popen(["sleep", "60"]).pid


def _start_double_forked_sleeper() -> int:
    """Start ``sleep 60`` whose parent (a shell) exits at once, as a daemon does; its pid."""
    script = "sleep 60 >/dev/null 2>&1 & echo $!"
    return int(subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("start", [_start_sleeper, _start_double_forked_sleeper])
def test_processes_started_by_the_function_are_stopped_when_it_returns(start: Callable[[], int]) -> None:
    before = child_pids()
    pid = call_in_child(start, deadline=10)
    assert stopped_if_left(pid)
    assert not new_children(before)


def test_processes_started_by_the_function_are_stopped_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def start_and_hang() -> None:
        pid_file.write_text(str(_start_double_forked_sleeper()))
        time.sleep(60)

    before = child_pids()
    with pytest.raises(IsolatedCallTimedOut):
        call_in_child(start_and_hang, deadline=1.0)
    assert stopped_if_left(int(pid_file.read_text()))
    assert not new_children(before)
