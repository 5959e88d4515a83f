"""Stopping processes, on real ones: already gone, a zombie, SIGTERM ignored, not ours; the exit status kept."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import textwrap
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from airflow_executor_logs.utils.processes import Outcome, StopResult, is_gone, stop_each, stop_processes
from airflow_executor_logs.utils.processes.state import INIT_NAMES
from tests.support.process_control import is_orphaned, same_process, stop_children, stop_process_tree, wait_gone
from tests.support.processes import python_child, wait_status

if TYPE_CHECKING:
    pass

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
)
SLEEPS = "import time; print('ready', flush=True); time.sleep(60)"
WAITS_FOR_STDIN = "import sys; print('ready', flush=True); sys.stdin.read()"
# A child with a child of its own (a grandchild of ours): prints the grandchild's pid, then "ready".
# argv[1]: what the grandchild runs; argv[2]: "stay" (keep it as a child) or "leave" (exit: it is orphaned).
WITH_GRANDCHILD = textwrap.dedent(
    """
    import os, subprocess, sys, time

    grandchild = subprocess.Popen(sys.argv[1:2] if sys.argv[1] == "true" else [sys.executable, "-c", sys.argv[1]])
    print(grandchild.pid, flush=True)
    print("ready", flush=True)
    if sys.argv[2] == "leave":
        os._exit(0)
    time.sleep(60)
    """
)


def _with_grandchild(grandchild_code: str, mode: str = "stay") -> str:
    """``python -c`` code of a child that runs ``grandchild_code`` ("true" for /bin/true) as its child."""
    return f"import sys; sys.argv[1:] = [{grandchild_code!r}, {mode!r}]\n" + WITH_GRANDCHILD


def _is_our_unreaped_child(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


# --------------------------------------------------------------------------------------------
# Already gone
# --------------------------------------------------------------------------------------------


def test_already_gone_is_reported_and_never_signalled() -> None:
    with python_child(WAITS_FOR_STDIN) as child:
        handle = psutil.Process(child.proc.pid)
        assert not is_gone(handle)
        assert child.proc.stdin is not None
        child.proc.stdin.close()
        assert child.proc.wait(timeout=10) == 0  # reaped: the pid is free for anyone now

        assert is_gone(handle)
        assert stop_each([handle]) == [StopResult(handle, Outcome.GONE, None)]
        assert stop_each([child.proc]) == [StopResult(child.proc, Outcome.GONE, None)]
        assert stop_processes([handle, child.proc]) == []
        assert stop_process_tree(child.proc) == []  # a reaped Popen: its pid is never looked up again
        assert wait_gone([handle, child.proc], 0.0) == []
        assert child.proc.returncode == 0


# --------------------------------------------------------------------------------------------
# Zombies
# --------------------------------------------------------------------------------------------


def test_our_zombie_counts_as_gone_and_is_reaped() -> None:
    proc = subprocess.Popen(["true"])  # not waited for: it stays a zombie child of ours
    try:
        handle = psutil.Process(proc.pid)
        wait_status(handle, psutil.STATUS_ZOMBIE)
        os.kill(proc.pid, 0)  # kill -0 still succeeds on a zombie

        assert is_gone(handle)
        assert same_process(handle.pid, handle.create_time()) is None
        (result,) = stop_each([handle])

        assert (result.outcome, result.sent) == (Outcome.GONE, None)
        assert not _is_our_unreaped_child(proc.pid)  # reaped
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def test_a_zombie_that_is_not_our_child_counts_as_gone() -> None:
    with python_child(_with_grandchild("true")) as child:
        zombie = child.adopt(int(child.printed[0]))  # a zombie child of our child, which never reaps it
        wait_status(zombie, psutil.STATUS_ZOMBIE)
        os.kill(zombie.pid, 0)

        assert is_gone(zombie)
        assert stop_each([zombie], grace=5.0) == [StopResult(zombie, Outcome.GONE, None)]
        assert wait_gone([zombie], 0.0) == []
        assert child.proc.poll() is None  # its parent was not touched


def test_a_killed_orphan_is_gone_even_if_pid_1_never_reaps_it() -> None:
    with python_child(_with_grandchild(SLEEPS, mode="leave")) as child:
        orphan = child.adopt(int(child.printed[0]))
        assert child.proc.wait(timeout=10) == 0
        deadline = time.monotonic() + 10
        while orphan.ppid() == child.proc.pid:
            assert time.monotonic() < deadline, "the orphan was never reparented"
            time.sleep(0.02)
        if orphan.ppid() != 1 and psutil.Process(orphan.ppid()).name() not in INIT_NAMES:
            pytest.skip(f"adopted by subreaper {orphan.ppid()}, which is not recognisable as one")
        assert is_orphaned(orphan)

        started = time.monotonic()
        (result,) = stop_each([orphan], grace=5.0)

        assert (result.outcome, result.sent) == (Outcome.STOPPED, signal.SIGTERM)
        assert time.monotonic() - started < 4.0  # not held up by a zombie that PID 1 may never reap
        assert is_gone(orphan)


# --------------------------------------------------------------------------------------------
# SIGTERM ignored
# --------------------------------------------------------------------------------------------


def test_a_process_that_ignores_sigterm_gets_sigkill_after_grace() -> None:
    with python_child(IGNORES_SIGTERM) as child:
        handle = psutil.Process(child.proc.pid)
        started = time.monotonic()

        (result,) = stop_each([handle], grace=0.5)

        assert time.monotonic() - started >= 0.5
        assert (result.outcome, result.sent) == (Outcome.STOPPED, signal.SIGKILL)
        assert is_gone(handle)
        assert not _is_our_unreaped_child(handle.pid)  # reaped


def test_through_popen_the_exit_status_is_kept() -> None:
    with python_child(IGNORES_SIGTERM) as child:
        assert stop_processes([child.proc], grace=0.3) == []
        assert child.proc.returncode == -signal.SIGKILL
    with python_child(SLEEPS) as child:
        assert stop_processes([child.proc], grace=5.0) == []
        assert child.proc.returncode == -signal.SIGTERM


# --------------------------------------------------------------------------------------------
# Not ours
# --------------------------------------------------------------------------------------------


def test_a_process_that_is_not_our_child_is_left_alone_when_we_restrict_to_children() -> None:
    with python_child(_with_grandchild(SLEEPS)) as child:
        grandchild = child.adopt(int(child.printed[0]))

        assert stop_each([grandchild], grace=0.2, only_children_of=os.getpid()) == [
            StopResult(grandchild, Outcome.SKIPPED, None)
        ]
        assert stop_processes([grandchild], grace=0.2, only_children_of=os.getpid()) == []
        assert stop_children([grandchild.pid], grace=0.2) == []

        time.sleep(0.2)
        assert not is_gone(grandchild)
        assert grandchild.status() != psutil.STATUS_ZOMBIE
        assert child.proc.poll() is None

        # Its own parent may stop it; so may a caller without the restriction.
        assert stop_each([grandchild], grace=5.0, only_children_of=child.proc.pid)[0].outcome == Outcome.STOPPED


def test_this_process_is_never_signalled() -> None:
    me = psutil.Process()
    assert stop_each([me], grace=0.0) == [StopResult(me, Outcome.SKIPPED, None)]
    assert stop_children([os.getpid()]) == []
