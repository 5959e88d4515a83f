"""
The helper's own side: it dies with its worker whatever it is doing, ends on SIGINT and SIGHUP as on
SIGTERM (no traceback, grandchildren stopped), passes no descriptor on, and keeps the server's working
directory off ``sys.path``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.processes import is_gone
from airflow_executor_logs.utils.zygote import Zygote
from tests.support.processes import python_child, stopped_if_left


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    helper = Zygote()
    yield helper
    helper.stop()


def _until(predicate: object, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.005)
    return time.monotonic() - started


def test_a_threaded_refusal_names_its_module() -> None:
    from airflow_executor_logs.utils.zygote_helper import THREADED, threaded_module

    assert threaded_module(f"{THREADED} some.module: importing it left the helper with 2 threads") == "some.module"
    assert threaded_module("KeyError: 'x'") is None


def _fds_and_path() -> tuple[list[str], list[str]]:
    """In the read child: the inheritable descriptors besides 0-2, and ``sys.path`` before the call's."""
    import sys

    inheritable = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    inheritable.append(os.readlink(f"/proc/self/fd/{name}"))
            except OSError:
                continue
    return inheritable, list(sys.path)


def test_no_descriptor_is_inheritable_by_what_a_read_execs(zygote: Zygote) -> None:
    inheritable, _ = zygote.call(_fds_and_path, deadline=Deadline(60))
    assert inheritable == []


def test_the_working_directory_is_not_on_the_helpers_sys_path(
    zygote: Zygote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module in the server's working directory is not what the helper imports for a preload's name."""
    marker = tmp_path / "imported"
    (tmp_path / "in_the_working_directory.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    zygote.call(os.getpid, deadline=Deadline(60), preload=["in_the_working_directory"])
    assert not marker.exists()


def _start_sleeper_and_hang(pid_file: str) -> None:
    import subprocess

    sleeper = subprocess.Popen(["sleep", "600"])
    Path(pid_file).write_text(str(sleeper.pid))
    time.sleep(600)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_sigint_and_sighup_end_the_helper_like_sigterm(
    zygote: Zygote, number: signal.Signals, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import functools

    pid_file = str(tmp_path / "sleeper")
    call = functools.partial(_start_sleeper_and_hang, pid_file)
    thread = threading.Thread(target=lambda: _swallow(zygote, call), daemon=True)
    thread.start()
    _until(lambda: Path(pid_file).exists() and Path(pid_file).read_text(), 60)
    sleeper = psutil.Process(int(Path(pid_file).read_text()))
    helper = psutil.Process(zygote.pid)
    try:
        helper.send_signal(number)
        gone = _until(lambda: is_gone(helper) and is_gone(sleeper), 10)
    finally:
        stopped_if_left(sleeper.pid)
    thread.join(30)
    print(f"\n{number.name}: helper and grandchild gone in {gone:.2f} s")
    assert "Traceback" not in capfd.readouterr().err


def _swallow(zygote: Zygote, call: object) -> None:
    with contextlib.suppress(Exception):
        zygote.call(call, deadline=Deadline(120))  # type: ignore[arg-type]


_SLOW_FIRST_PRELOAD = """
import os, sys, threading
sys.path.insert(0, {directory!r})
os.environ["PYTHONPATH"] = {directory!r} + os.pathsep + os.environ.get("PYTHONPATH", "")
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.zygote import Zygote
helper = Zygote()
threading.Thread(target=helper.call, args=(os.getpid,),
                 kwargs={{"deadline": Deadline(600), "preload": ["hangs_in_helper"]}}, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""
_HANGS_IN_HELPER = """
import os, sys, time
if sys.argv[-1] == "airflow-executor-logs-zygote":
    open({marker!r}, "w").write(str(os.getpid()))
    time.sleep(3600)
"""


def test_a_worker_sigkilled_during_the_first_preload_takes_its_helper_within_2_s(tmp_path: Path) -> None:
    marker = tmp_path / "helper"
    (tmp_path / "hangs_in_helper.py").write_text(_HANGS_IN_HELPER.format(marker=str(marker)))
    with python_child(_SLOW_FIRST_PRELOAD.format(directory=str(tmp_path)), timeout=60) as worker:
        _until(lambda: marker.exists() and marker.read_text(), 60)
        helper = worker.adopt(int(marker.read_text()))
        assert helper.ppid() == worker.proc.pid
        os.kill(worker.proc.pid, signal.SIGKILL)
        gone = _until(lambda: is_gone(helper), 10)
    print(f"\nworker SIGKILLed in the helper's first preload: helper gone {gone:.3f} s later")
    assert gone <= 2.0


def test_a_sigstopped_helper_dies_with_its_worker(tmp_path: Path) -> None:
    marker = tmp_path / "helper"
    (tmp_path / "hangs_in_helper.py").write_text(_HANGS_IN_HELPER.format(marker=str(marker)))
    with python_child(_SLOW_FIRST_PRELOAD.format(directory=str(tmp_path)), timeout=60) as worker:
        _until(lambda: marker.exists() and marker.read_text(), 60)
        helper = worker.adopt(int(marker.read_text()))
        helper.suspend()
        os.kill(worker.proc.pid, signal.SIGKILL)
        gone = _until(lambda: is_gone(helper), 10)
    print(f"\nSIGSTOPped helper: gone {gone:.3f} s after its worker's SIGKILL")
    assert gone <= 2.0
