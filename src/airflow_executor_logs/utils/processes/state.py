"""Whether a process is gone, and why one is orphaned."""

from __future__ import annotations

import psutil

__all__ = ["INIT_NAMES", "is_gone", "orphan_reason"]

#: Names of init processes and subreapers that adopt orphans; a process whose parent is one is orphaned.
INIT_NAMES = frozenset({"init", "systemd", "tini", "dumb-init", "catatonit", "docker-init", "s6-svscan", "runsvdir"})


def is_gone(proc: psutil.Process | int) -> bool:
    """
    Whether ``proc`` has exited: no such process, its pid now names another one, or it is a zombie.

    A zombie counts as gone: where PID 1 never reaps, a killed orphan stays a zombie (holding no
    memory) and ``kill -0`` still succeeds on it. A process we may not inspect counts as alive. For a
    bare pid, "another one" cannot be told apart: it is gone when nothing runs under that pid.
    """
    try:
        if isinstance(proc, int):
            proc = psutil.Process(proc)
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # includes ZombieProcess
        return True
    except psutil.AccessDenied:
        return False


def orphan_reason(ppid: int, create_time: float) -> str | None:
    """
    Why a process with parent ``ppid``, started at ``create_time``, is orphaned; ``None`` if its parent lives.

    Orphaned means: reparented to PID 1 (or 0), its parent is gone or a zombie, the parent pid now names
    a younger process (reused), or it was adopted by an init or subreaper (:data:`INIT_NAMES`).
    """
    if ppid <= 1:
        return f"ppid {ppid}"
    try:
        parent = psutil.Process(ppid)
        if parent.create_time() > create_time:
            return f"parent {ppid} gone"  # a parent is never younger than its child: the pid was reused
        if parent.status() == psutil.STATUS_ZOMBIE:
            return f"parent {ppid} exited"
        name = parent.name()
    except psutil.NoSuchProcess:
        return f"parent {ppid} gone"
    except psutil.AccessDenied:
        return None
    if name in INIT_NAMES:
        return f"adopted by {name} {ppid}"
    return None
