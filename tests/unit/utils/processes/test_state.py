"""Whether a process is gone, and why one is orphaned."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psutil

from airflow_executor_logs.utils.processes import is_gone, orphan_reason
from tests.support.process_control import is_orphaned
from tests.support.processes import wait_status

SLEEPS = "import time; print('ready', flush=True); time.sleep(60)"
WAITS_FOR_STDIN = "import sys; print('ready', flush=True); sys.stdin.read()"
# Prints the pid of a sleeping child of its own, then "ready".
WITH_SLEEPING_CHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_bare_pid_that_is_gone() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    assert is_gone(proc.pid)
    assert not is_gone(os.getpid())


def test_orphan_reason() -> None:
    me = psutil.Process()
    assert orphan_reason(1, me.create_time()) == "ppid 1"
    assert orphan_reason(0, me.create_time()) == "ppid 0"
    assert orphan_reason(me.pid, time.time()) is None  # a live parent, older than its child
    assert orphan_reason(me.pid, me.create_time() - 60) == f"parent {me.pid} gone"  # parent younger: reused
    assert not is_orphaned(me)

    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    assert orphan_reason(proc.pid, time.time()) == f"parent {proc.pid} gone"


def test_a_zombie_parent_has_exited() -> None:
    proc = subprocess.Popen(["true"])  # not waited for yet: a zombie child of ours
    try:
        wait_status(psutil.Process(proc.pid), psutil.STATUS_ZOMBIE)
        assert orphan_reason(proc.pid, time.time()) == f"parent {proc.pid} exited"
    finally:
        proc.wait(timeout=10)


def test_a_parent_named_like_an_init_process_has_adopted_it(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    tini = tmp_path / "tini"  # the process name is the executable's: "tini"
    shutil.copy(sleep, tini)
    proc = subprocess.Popen([str(tini), "60"])
    try:
        handle = psutil.Process(proc.pid)
        deadline = time.monotonic() + 10
        while handle.name() != "tini":  # until the exec is done
            assert time.monotonic() < deadline, handle.name()
            time.sleep(0.02)
        assert orphan_reason(proc.pid, time.time()) == f"adopted by tini {proc.pid}"
    finally:
        proc.kill()
        proc.wait(timeout=10)
