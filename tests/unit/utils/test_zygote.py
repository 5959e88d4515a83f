"""
The zygote: one single-threaded helper per worker, started by the first isolated call, gone after
``idle`` seconds without calls and when its worker goes (SIGKILL included), with what it was running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.processes import is_gone
from airflow_executor_logs.utils.zygote import HELPER_MARK, Zygote, is_helper_cmdline
from tests.support.processes import forks_of_this_process, python_child


def _pid() -> int:
    return os.getpid()


def _wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """The pids still alive after ``timeout`` s (a zombie counts as gone)."""
    give_up = time.monotonic() + timeout
    while (alive := [pid for pid in pids if not is_gone(pid)]) and time.monotonic() < give_up:
        time.sleep(0.05)
    return alive


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    helper = Zygote()
    yield helper
    helper.stop()


def test_the_helper_starts_on_the_first_call_and_forks_each_call_a_child_of_its_own(zygote: Zygote) -> None:
    assert zygote.pid is None
    first, second = zygote.call(_pid, deadline=Deadline(60)), zygote.call(_pid, deadline=Deadline(60))
    helper = psutil.Process(zygote.pid)
    assert is_helper_cmdline(helper.cmdline())
    assert helper.ppid() == os.getpid()
    assert first != second
    assert {first, second}.isdisjoint({os.getpid(), helper.pid})
    assert helper.num_threads() == 1


def test_the_helper_exits_after_idle_seconds_without_calls(zygote: Zygote) -> None:
    zygote.call(_pid, deadline=Deadline(60), idle=1.0)
    pid = zygote.pid
    assert pid is not None
    assert not _wait_gone([pid], timeout=30)
    assert zygote.pid is None
    assert zygote.call(_pid, deadline=Deadline(60)) > 0  # the next call starts a new helper
    assert zygote.pid not in (None, pid)


def test_idle_counts_from_when_a_call_ran_not_from_when_it_arrived(
    zygote: Zygote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call whose preloads take longer than ``idle`` does not leave a helper that exits at once."""
    (tmp_path / "slow_to_import.py").write_text("import time\ntime.sleep(4.0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # the helper imports it before its first fork
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    zygote.call(_pid, deadline=Deadline(120), idle=2.0, preload=["slow_to_import"])
    helper = zygote.pid
    zygote.call(_pid, deadline=Deadline(120), idle=2.0, preload=["slow_to_import"])
    assert zygote.pid == helper


_WORKER = """
import functools, sys, threading, time
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.zygote import Zygote
from tests.unit.utils.test_zygote import start_grandchild_and_hang

helper = Zygote()
threading.Thread(target=helper.call, args=(functools.partial(start_grandchild_and_hang, sys.argv[-1]),),
                 kwargs={"deadline": Deadline(600)}, daemon=True).start()
print(helper.pid or 0, flush=True)
print("ready", flush=True)
sys.stdin.read()
"""


def start_grandchild_and_hang(pid_file: str) -> None:
    """In the isolated child: start a ``sleep`` (recording the pids), then hang."""
    import subprocess

    sleeper = subprocess.Popen(["sleep", "600"])
    with open(pid_file, "w") as out:
        out.write(f"{os.getpid()} {sleeper.pid}")
    time.sleep(600)


def test_a_sigkilled_worker_takes_its_helper_and_the_read_in_flight_with_it(tmp_path: os.PathLike[str]) -> None:
    pid_file = os.path.join(tmp_path, "pids")
    code = _WORKER.replace("sys.argv[-1]", repr(pid_file))
    with python_child(code, timeout=60) as worker:
        give_up = time.monotonic() + 60
        while len(pids := _read_pids(pid_file)) < 2:
            assert time.monotonic() < give_up, "the read never started"
            time.sleep(0.05)
        read_child, sleeper = pids
        helper = psutil.Process(read_child).ppid()
        assert is_helper_cmdline(psutil.Process(helper).cmdline())
        for pid in (helper, read_child, sleeper):
            worker.adopt(pid)  # stopped by PID on the way out, whatever the assertions say
        os.kill(worker.proc.pid, signal.SIGKILL)
        assert not _wait_gone([helper, read_child, sleeper], timeout=30)


def _read_pids(path: str) -> list[int]:
    try:
        with open(path) as pids:
            return [int(pid) for pid in pids.read().split()]
    except FileNotFoundError:
        return []


def test_no_fork_happens_in_a_threaded_caller(zygote: Zygote) -> None:
    """An audit hook sees every ``os.fork`` of this process: concurrent calls make none, the helper forks."""
    with forks_of_this_process() as forks, ThreadPoolExecutor(4) as pool:
        pids = list(pool.map(lambda _: zygote.call(_pid, deadline=Deadline(60)), range(8)))
    assert forks == []
    assert len(set(pids)) == 8
    assert zygote.pid is not None
    assert psutil.Process(zygote.pid).cmdline()[-1] == HELPER_MARK


def _explode() -> None:
    raise KeyError("missing")


def test_a_failed_call_answers_without_waiting_on_the_helper(zygote: Zygote) -> None:
    """A call that raises is answered as soon as its child says so: no extra wait to see if the helper exited."""
    from airflow_executor_logs.utils.isolated_call import IsolatedCallFailed

    def timed(fn: object) -> float:
        started = time.monotonic()
        with contextlib.suppress(IsolatedCallFailed):
            zygote.call(fn, deadline=Deadline(60))  # type: ignore[arg-type]
        return time.monotonic() - started

    timed(_pid)
    answered = min(timed(_pid) for _ in range(3))
    failed = min(timed(_explode) for _ in range(3))
    assert failed < answered + 0.3, (failed, answered)
