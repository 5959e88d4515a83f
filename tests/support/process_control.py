"""
Process control only the tests and benchmarks need: find processes, wait for them, stop them and their trees.

Built on the product's own :func:`~airflow_executor_logs.utils.processes.stop_processes` and
:func:`~airflow_executor_logs.utils.processes.is_gone`, so a test stops a process the way the product does:
by a handle that fixes its identity (a :class:`psutil.Process`, or the ``Popen`` / multiprocessing object
that owns it), and a zombie counts as gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import psutil

from airflow_executor_logs.utils.processes import Stoppable, is_gone, orphan_reason, stop_processes

__all__ = [
    "find_processes_with_env",
    "is_orphaned",
    "process_tree",
    "same_process",
    "stop_children",
    "stop_process_tree",
    "wait_gone",
]

P = TypeVar("P", bound=Stoppable)

_POLL_INTERVAL = 0.05


def is_orphaned(proc: psutil.Process) -> bool:
    """Whether ``proc`` lost its parent (see ``orphan_reason``); ``False`` if it is gone or unreadable."""
    try:
        with proc.oneshot():
            ppid, create_time = proc.ppid(), proc.create_time()
    except psutil.Error:
        return False
    return orphan_reason(ppid, create_time) is not None


def same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The live (not zombie) process ``pid`` if it is still the one started at ``create_time``, else ``None``."""
    try:
        proc = psutil.Process(pid)
        if proc.create_time() != create_time:
            return None
    except psutil.Error:
        return None
    return None if is_gone(proc) else proc


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` followed by all its live descendants (empty if ``pid`` is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def find_processes_with_env(key: str, value: str) -> list[psutil.Process]:
    """Processes (readable by us, excluding ourselves) whose environment has ``key=value``."""
    me = os.getpid()
    matches: list[psutil.Process] = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(key) == value:
                matches.append(proc)
        except (psutil.Error, OSError):
            continue
    return matches


def _exited(proc: Stoppable) -> bool:
    """Whether ``proc`` has exited, reaping it if it is our child."""
    if isinstance(proc, subprocess.Popen):
        return proc.poll() is not None
    if isinstance(proc, psutil.Process):
        if proc.pid > 0 and proc.is_running():  # never waitpid() a reused pid, nor 0 (any child)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
        return is_gone(proc)
    try:
        if proc.pid is None or proc.exitcode is not None:  # exitcode reaps it
            with contextlib.suppress(AssertionError, ValueError):
                proc.join(0)  # let multiprocessing forget it
            return True
    except ValueError:  # closed
        return True
    return False


def wait_gone(procs: Iterable[P], timeout: float) -> list[P]:
    """Wait up to ``timeout`` seconds for ``procs`` to exit (reaping ours); return those still running."""
    give_up_at = time.monotonic() + timeout
    pending = list(procs)
    while True:
        pending = [proc for proc in pending if not _exited(proc)]
        left = give_up_at - time.monotonic()
        if not pending or left <= 0:
            return pending
        time.sleep(min(_POLL_INTERVAL, left))


def stop_process_tree(
    root: int | subprocess.Popen[Any], grace: float = 10.0, *, kill_wait: float = 5.0
) -> list[psutil.Process]:
    """
    Stop ``root`` and all its descendants; return the processes that could not be stopped.

    Descendants are collected *before* signalling, so children reparented while the root shuts down
    are still caught. Only the root gets SIGTERM, and ``grace`` seconds to exit and take its tree with
    it; then every remaining process is killed. Pass the ``Popen`` of a child so that it reaps it.
    """
    if isinstance(root, subprocess.Popen) and root.poll() is not None:
        return []  # reaped: its pid may name another process now
    tree = process_tree(root if isinstance(root, int) else root.pid)
    if not tree:
        return []
    head: Stoppable = tree[0] if isinstance(root, int) else root
    give_up_at = time.monotonic() + grace
    with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
        head.send_signal(signal.SIGTERM)  # psutil refuses when the pid now names another process
    head_left = wait_gone([head], grace)
    pending: list[Stoppable] = list(wait_gone(tree[1:], max(0.0, give_up_at - time.monotonic())))
    if head_left:  # children spawned late during shutdown, while the root is verifiably alive
        known = {proc.pid for proc in tree}
        with contextlib.suppress(psutil.Error):
            pending += [proc for proc in tree[0].children(recursive=True) if proc.pid not in known]
        pending.append(head)
    left = stop_processes(pending, 0.0, kill_wait=kill_wait)
    return [tree[0] if proc is head else proc for proc in left]  # type: ignore[misc]


def stop_children(
    pids: Iterable[int], grace: float = 2.0, *, processes: Iterable[BaseProcess] | None = None
) -> list[int]:
    """
    Stop those of ``pids`` that are still children of this process, and reap them; return pids left running.

    SIGTERM, then SIGKILL after ``grace`` s (and ``grace`` s more to go). A pid that belongs to one of
    ``processes`` (default: :func:`multiprocessing.active_children`) is stopped and joined through its
    Process object, so multiprocessing sees its exit; any other pid only while its parent is still us.
    """
    me = os.getpid()
    wanted = {pid for pid in pids if pid != me}
    if not wanted:
        return []
    candidates = multiprocessing.active_children() if processes is None else processes
    owned = [proc for proc in candidates if proc.pid in wanted]
    targets: list[Stoppable] = list(owned)
    for pid in wanted - {proc.pid for proc in owned}:
        with contextlib.suppress(psutil.Error):
            targets.append(psutil.Process(pid))
    alive = stop_processes(targets, grace, kill_wait=grace, only_children_of=me)
    return sorted(proc.pid for proc in alive if proc.pid is not None)
