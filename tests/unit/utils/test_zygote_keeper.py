"""
The keeper thread: helpers outlive the request thread that needed them, a helper that exited on idle is
reaped without waiting for the next call, and letting a helper go never blocks the caller.
"""

from __future__ import annotations

import os
import time

import psutil

from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.processes import is_gone
from airflow_executor_logs.utils.zygote import Zygote
from tests.support.processes import python_child

_STARTED_IN_A_THREAD = """
import threading, time
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.zygote import Zygote
helper = Zygote()
t = threading.Thread(target=helper.call, args=(time.time,), kwargs={"deadline": Deadline(120)})
t.start(); t.join()
print(helper.pid, flush=True)
print("ready", flush=True)
import sys; sys.stdin.read()
"""


def test_a_helper_started_from_a_thread_outlives_that_thread() -> None:
    """The parent-death signal follows the thread that forked: a keeper thread, never the request's, starts it."""
    with python_child(_STARTED_IN_A_THREAD, timeout=120) as worker:
        helper = worker.adopt(int(worker.printed[0]))
        time.sleep(1.0)
        assert not is_gone(helper)


def test_a_helper_that_exited_on_idle_is_reaped_without_another_call() -> None:
    zygote = Zygote()
    try:
        zygote.call(os.getpid, deadline=Deadline(60), idle=0.5)
        helper = psutil.Process(zygote.pid)
        give_up = time.monotonic() + 10
        while helper.is_running() and time.monotonic() < give_up:  # a zombie still "runs" until reaped
            time.sleep(0.05)
        assert not helper.is_running(), f"{helper.pid} is {helper.status()}"
    finally:
        zygote.stop()


def test_letting_a_stopped_helper_go_does_not_wait_for_it() -> None:
    zygote = Zygote()
    zygote.call(os.getpid, deadline=Deadline(60))
    helper = zygote._helper
    assert helper is not None
    helper.handle.suspend()
    try:
        started = time.monotonic()
        zygote._let_go(helper, kill=True)
        assert time.monotonic() - started < 0.2
        give_up = time.monotonic() + 10
        while not is_gone(helper.handle) and time.monotonic() < give_up:
            time.sleep(0.02)
        assert is_gone(helper.handle)
    finally:
        zygote.stop()
