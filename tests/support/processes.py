"""Process accounting for leak assertions, and helper processes that are always stopped by PID, with psutil."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil

from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.processes import is_gone, stop_processes
from airflow_executor_logs.utils.processes.managers import is_forkserver_cmdline, is_resource_tracker_cmdline
from airflow_executor_logs.utils.zygote import Zygote
from tests.support.process_control import stop_process_tree

#: The test process's one short-lived executor helper, as a worker's pipeline holds one: the tests' pipelines
#: share it (``ExecutorLogPipeline(helper=HELPER)``), so a cold start is paid once, not per pipeline.
HELPER = Zygote()


def child_pids() -> set[int]:
    """
    Every live descendant of this process (zombies included), but the helpers that live as long as it does.

    Those are :data:`HELPER`, and the forkserver and resource tracker ``multiprocessing`` keeps for the whole
    process once something here started one (a Manager started under the ``forkserver`` start method).
    """
    me = psutil.Process()
    return {child.pid for child in me.children(recursive=True)} - helper_pids() - _stdlib_helpers(me)


def helper_pids() -> set[int]:
    """The pid of :data:`HELPER`'s live helper process, if any."""
    pid = HELPER.pid
    return set() if pid is None else {pid}


def _stdlib_helpers(me: psutil.Process) -> set[int]:
    found = set()
    for child in me.children():
        with contextlib.suppress(psutil.Error):
            cmdline = child.cmdline()
            if is_forkserver_cmdline(cmdline) or is_resource_tracker_cmdline(cmdline):
                found.add(child.pid)
    return found


def zombies() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def new_children(before: set[int], settle: float = 30.0) -> set[int]:
    """
    Descendants that were not in ``before``, once none is left or after ``settle`` s.

    Returns at once when there are none; the bound is generous, for exiting ones on a loaded machine.
    """
    give_up = time.monotonic() + settle
    while True:
        extra = child_pids() - before
        if not extra or time.monotonic() >= give_up:
            return extra
        time.sleep(0.05)


@contextlib.contextmanager
def children_stopped_on_exit() -> Iterator[set[int]]:
    """Yield this process's descendants now; on the way out, stop by PID any it gained (a failed test's leftovers)."""
    before = child_pids()
    try:
        yield before
    finally:
        leftovers = []
        for pid in child_pids() - before:
            with contextlib.suppress(psutil.Error):
                leftovers.append(psutil.Process(pid))
        stop_processes(leftovers, grace=1.0)


def stopped_if_left(pid: int) -> bool:
    """Whether ``pid`` was gone; if not, it is stopped now (so a failing test leaves nothing behind)."""
    if is_gone(pid):
        return True
    with contextlib.suppress(psutil.Error):
        stop_processes([psutil.Process(pid)], grace=0.0)
    return False


def wait_status(proc: psutil.Process, status: str, timeout: float = 10.0) -> None:
    """Wait until ``proc`` is in ``status`` (e.g. ``psutil.STATUS_ZOMBIE``), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while proc.status() != status:
        assert time.monotonic() < deadline, f"{proc.pid} is {proc.status()}, not {status}"
        time.sleep(0.02)


def describe(pids: set[int]) -> list[str]:
    out = []
    for pid in sorted(pids):
        try:
            process = psutil.Process(pid)
            out.append(f"{pid} {process.status()} {' '.join(process.cmdline())[:80]}")
        except psutil.NoSuchProcess:
            out.append(f"{pid} gone")
    return out


@dataclasses.dataclass
class PythonChild:
    """A ``python -c`` child, the lines it printed up to ``ready``, and other processes to stop with it."""

    proc: subprocess.Popen[str]
    printed: list[str]
    others: list[psutil.Process] = dataclasses.field(default_factory=list)

    def adopt(self, pid: int) -> psutil.Process:
        """A psutil handle on ``pid`` (identity captured now), stopped on the way out too."""
        proc = psutil.Process(pid)
        self.others.append(proc)
        return proc


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    stdout = proc.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        raise AssertionError(f"child {proc.pid} printed nothing for {timeout:g} s") from None


@contextlib.contextmanager
def python_child(code: str, timeout: float = 30.0) -> Iterator[PythonChild]:
    """
    Run ``python -c code`` until it prints ``ready``; stop it (its tree, and what it adopted) by PID after.

    Its stdin is a pipe: a child can wait for ``proc.stdin.close()``.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True
    )
    child = PythonChild(proc, [])
    try:
        while (line := _read_line(proc, timeout)) != "ready":
            if not line and proc.poll() is not None:
                raise AssertionError(f"child exited with {proc.returncode} before it was ready: {child.printed}")
            child.printed.append(line)
        yield child
    finally:
        stop_process_tree(proc, grace=1.0)
        stop_processes(child.others, grace=0.0)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


_fork_records: list[list[int]] = []
_fork_hook_lock = threading.Lock()


def _record_fork(event: str, args: tuple[object, ...]) -> None:
    if event == "os.fork" and _fork_records:
        from airflow_executor_logs.utils.isolated_call import thread_count

        for record in list(_fork_records):
            record.append(thread_count())


@contextlib.contextmanager
def forks_of_this_process() -> Iterator[list[int]]:
    """The thread count of this process at each ``os.fork`` it makes in the block (an audit hook sees them)."""
    with _fork_hook_lock:
        if not getattr(_record_fork, "installed", False):
            sys.addaudithook(_record_fork)
            _record_fork.installed = True  # type: ignore[attr-defined]
    record: list[int] = []
    _fork_records.append(record)
    try:
        yield record
    finally:
        _fork_records.remove(record)


def start_the_helper() -> None:
    """
    Start :data:`HELPER`'s helper process, preloaded as a short-lived read preloads it.

    Its first start imports Airflow (seconds on a loaded machine): tests whose deadlines are about the
    read, not about that start, call this first.
    """
    from airflow_executor_logs.executors.short_lived import PRELOAD

    HELPER.call(os.getpid, deadline=Deadline(300), preload=PRELOAD)
