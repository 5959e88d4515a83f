"""
Isolated calls: the answer comes back, failures are described, no process is left behind, and no
threaded process is ever forked (the zygote forks instead; ``call_in_child`` refuses).
"""

from __future__ import annotations

import functools
import io
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.isolated_call import (
    IsolatedCallFailed,
    IsolatedCallTimedOut,
    MultiThreadedForkRefused,
    call_in_child,
    thread_count,
)
from tests.support.processes import HELPER, child_pids, new_children, stopped_if_left


def _answer() -> dict[str, list[str]]:
    return {"lines": ["a", "b"]}


def _explode() -> None:
    raise KeyError("missing")


def _unpicklable() -> object:
    return threading.Lock()


def _sleep_a_minute() -> None:
    time.sleep(60)


def test_the_answer_is_pickled_back() -> None:
    assert HELPER.call(_answer, deadline=Deadline(30)) == {"lines": ["a", "b"]}


def test_an_exception_is_described() -> None:
    with pytest.raises(IsolatedCallFailed, match="KeyError: 'missing'"):
        HELPER.call(_explode, deadline=Deadline(30))


def test_an_answer_that_does_not_pickle_is_described() -> None:
    with pytest.raises(IsolatedCallFailed, match="could not be sent back"):
        HELPER.call(_unpicklable, deadline=Deadline(30))


def test_a_call_that_does_not_pickle_is_described() -> None:
    with pytest.raises(IsolatedCallFailed, match="cannot be sent to the helper"):
        HELPER.call(lambda: 1, deadline=Deadline(30))


def test_the_deadline_stops_the_child() -> None:
    HELPER.call(_answer, deadline=Deadline(30))  # the helper is up: the deadline below is the call's alone
    before = child_pids()
    started = time.monotonic()
    with pytest.raises(IsolatedCallTimedOut):
        HELPER.call(_sleep_a_minute, deadline=Deadline(0.5))
    assert time.monotonic() - started < 30  # generous for a loaded machine: the call sleeps for a minute
    assert not new_children(before)


def _log_in_child(output: io.StringIO) -> str:
    import structlog

    structlog.PrintLogger(output).msg("from the child")
    return output.getvalue()


def test_a_lock_held_by_another_thread_of_the_caller_does_not_block_the_child() -> None:
    """Under load, another thread is often writing a log line when a read starts (seen in a real API server)."""
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
        assert HELPER.call(functools.partial(_log_in_child, output), deadline=Deadline(30)) == "from the child\n"
    finally:
        release.set()
        writer.join(5)


def test_call_in_child_refuses_to_fork_a_threaded_process() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, args=(30,), daemon=True)
    other.start()
    try:
        assert thread_count() > 1
        before = child_pids()
        with pytest.raises(MultiThreadedForkRefused, match="threads"):
            call_in_child(_answer, deadline=10)
        assert not new_children(before, settle=0)
    finally:
        stop.set()
        other.join(5)


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
    pid = HELPER.call(start, deadline=Deadline(30))
    assert stopped_if_left(pid)
    assert not new_children(before)


def _start_and_hang(pid_file: Path) -> None:
    pid_file.write_text(str(_start_double_forked_sleeper()))
    time.sleep(60)


def test_processes_started_by_the_function_are_stopped_at_the_deadline(tmp_path: Path) -> None:
    HELPER.call(_answer, deadline=Deadline(30))  # the helper is up: the deadline below is the call's alone
    pid_file = tmp_path / "pid"
    before = child_pids()
    with pytest.raises(IsolatedCallTimedOut):
        HELPER.call(functools.partial(_start_and_hang, pid_file), deadline=Deadline(2.0))
    assert stopped_if_left(int(pid_file.read_text()))
    assert not new_children(before)


def test_a_pid_that_names_another_process_now_is_not_signalled() -> None:
    """The caller stops a child it did not fork only if its pid still names the process that said it started."""
    import socket

    import psutil

    from airflow_executor_logs.utils.isolated_call import HEADER, await_outcome

    bystander = subprocess.Popen(["sleep", "60"])
    try:
        ours, theirs = socket.socketpair()
        started = psutil.Process(bystander.pid).create_time()
        theirs.sendall(HEADER.pack(bystander.pid, started - 100.0))  # "its" pid, but another start time
        theirs.close()
        with ours, pytest.raises(IsolatedCallFailed, match="died without answering"):
            await_outcome(ours, time.monotonic() + 5, grace=0.1)
        assert bystander.poll() is None
        assert psutil.Process(bystander.pid).status() != psutil.STATUS_STOPPED
    finally:
        bystander.kill()
        bystander.wait()
