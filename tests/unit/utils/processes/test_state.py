"""Whether a process is gone or orphaned, whether a pid still names it, its tree, and finding by environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest

from airflow_executor_logs.utils.processes import (
    find_processes_with_env,
    is_gone,
    is_orphaned,
    orphan_reason,
    process_tree,
    same_process,
)
from tests.support.processes import python_child, wait_status

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


def test_same_process() -> None:
    me = psutil.Process()
    assert same_process(me.pid, me.create_time()) == me
    assert same_process(me.pid, me.create_time() - 1) is None
    with python_child(WAITS_FOR_STDIN) as child:
        handle = psutil.Process(child.proc.pid)
        create_time = handle.create_time()
        assert same_process(handle.pid, create_time) == handle
        assert child.proc.stdin is not None
        child.proc.stdin.close()
        child.proc.wait(timeout=10)
        assert same_process(handle.pid, create_time) is None
        assert not is_orphaned(handle)  # gone: not an orphan


def test_process_tree_is_the_root_then_its_descendants() -> None:
    with python_child(WITH_SLEEPING_CHILD) as child:
        grandchild = child.adopt(int(child.printed[0]))
        assert [proc.pid for proc in process_tree(child.proc.pid)] == [child.proc.pid, grandchild.pid]
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    assert process_tree(gone.pid) == []


def test_find_processes_with_env(monkeypatch: pytest.MonkeyPatch) -> None:
    mark = uuid.uuid4().hex
    monkeypatch.setenv("AEL_TEST_MARK", mark)  # inherited by the child, not in this process's own environ
    with python_child(SLEEPS) as child:
        assert [proc.pid for proc in find_processes_with_env("AEL_TEST_MARK", mark)] == [child.proc.pid]
        assert find_processes_with_env("AEL_TEST_MARK", mark + "-other") == []
