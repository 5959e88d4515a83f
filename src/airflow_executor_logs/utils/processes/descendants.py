"""Stop a whole process tree: the descendants of this process (a subreaper's own), or of another one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import psutil

from airflow_executor_logs.utils.processes.state import is_gone
from airflow_executor_logs.utils.processes.stopping import stop_processes

__all__ = ["stop_descendants", "stop_tree"]


def stop_descendants(grace: float, root: int | None = None) -> None:
    """
    Stop every descendant of ``root`` (this process by default): SIGTERM, ``grace`` seconds, SIGKILL.

    Repeated until none is left alive, since a dying process may start another. Zombies count as
    gone; this process reaps those that are its children.
    """
    try:
        parent = psutil.Process(root)
    except psutil.Error:
        return
    _until_no_descendants(parent, lambda descendants: stop_processes(descendants, grace, kill_wait=grace))
    if root is None:
        _reap_children()


def stop_tree(pid: int | psutil.Process, grace: float) -> None:
    """
    SIGKILL the descendants of ``pid`` until none is left, then ``pid`` itself.

    Name a process that is not this one's child by a :class:`psutil.Process` (its identity checked
    before each signal), never by a bare pid.
    """
    try:
        root = pid if isinstance(pid, psutil.Process) else psutil.Process(pid)
        root.suspend()  # a stopped subreaper forks nothing more, and its orphans still come back to it
    except psutil.Error:
        return
    # Their parent is stopped, so they stay zombies, which count as gone.
    _until_no_descendants(root, lambda descendants: stop_processes(descendants, grace=0, kill_wait=grace))
    with contextlib.suppress(psutil.Error):
        root.kill()


def _descendants(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [process for process in root.children(recursive=True) if not is_gone(process)]
    except psutil.Error:
        return []


def _until_no_descendants(root: psutil.Process, stop: Callable[[list[psutil.Process]], object]) -> None:
    for _ in range(10):
        descendants = _descendants(root)
        if not descendants:
            return
        stop(descendants)


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
