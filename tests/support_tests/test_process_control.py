"""The tests' own process control: a pid's identity, trees, finding by environment, stopping trees and children."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event

import psutil
import pytest

from airflow_executor_logs.utils.processes import is_gone
from tests.support.process_control import (
    find_processes_with_env,
    is_orphaned,
    process_tree,
    same_process,
    stop_children,
    stop_process_tree,
)
from tests.support.processes import python_child
from tests.unit.utils.processes.test_state import WAITS_FOR_STDIN, WITH_SLEEPING_CHILD
from tests.unit.utils.processes.test_stopping import IGNORES_SIGTERM, SLEEPS, _is_our_unreaped_child, _with_grandchild


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


def test_stop_process_tree_kills_a_root_that_ignores_sigterm_and_its_children() -> None:
    with python_child(_with_grandchild(IGNORES_SIGTERM)) as child:
        grandchild = child.adopt(int(child.printed[0]))
        root = child.proc  # SLEEPS: stops on SIGTERM; the grandchild only on SIGKILL
        assert stop_process_tree(root, grace=0.5) == []
        assert root.returncode == -signal.SIGTERM
        assert is_gone(grandchild)
    with python_child(IGNORES_SIGTERM) as child:
        assert stop_process_tree(child.proc.pid, grace=0.3) == []
        assert child.proc.poll() is not None


def _ignore_sigterm_and_sleep(ready: Event) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    time.sleep(60)


@contextlib.contextmanager
def _multiprocessing_child() -> Iterator[BaseProcess]:
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_ignore_sigterm_and_sleep, args=(ready,), daemon=True)
    process.start()
    try:
        assert ready.wait(30), "the multiprocessing child never got ready"
        yield process
    finally:
        if process.exitcode is None:
            process.kill()
        process.join(5)


def test_stop_children_stops_multiprocessing_children_through_their_process_object() -> None:
    with _multiprocessing_child() as process, python_child(SLEEPS) as child:
        assert process.pid is not None

        assert stop_children([process.pid, child.proc.pid, os.getpid()], grace=0.3) == []

        assert process.exitcode == -signal.SIGKILL  # multiprocessing saw it exit
        assert process not in multiprocessing.active_children()
        assert not _is_our_unreaped_child(child.proc.pid)  # stopped and reaped
