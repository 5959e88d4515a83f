"""Process accounting helpers: find ``multiprocessing`` Manager servers and stop process trees.

Everything here is psutil-based and deliberately free of Airflow imports so it can be used from
tests, benchmarks and diagnostics scripts alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ManagerProcess",
    "find_manager_processes",
    "find_processes_with_env",
    "kill_processes",
    "process_tree",
    "stop_process_tree",
]

_PROC_NET_UNIX = "/proc/net/unix"
# ``__SO_ACCEPTCON`` in the "Flags" column of /proc/net/unix: the socket is listening.
_SO_ACCEPTCON = 0x10000


@dataclass(frozen=True)
class ManagerProcess:
    """A ``multiprocessing.managers.Server`` process (the process behind ``multiprocessing.Manager()``)."""

    pid: int
    ppid: int
    create_time: float
    rss: int
    uss: int | None
    cmdline: tuple[str, ...]
    socket_path: str
    orphaned: bool

    @property
    def age(self) -> float:
        """Seconds since the process was created."""
        return time.time() - self.create_time


def _is_manager_socket_path(path: str, tmpdirs: tuple[str, ...] | None) -> bool:
    """Whether ``path`` looks like ``<dir>/pymp-*/listener-*`` (with ``<dir>`` at or below ``tmpdirs``)."""
    if not path or path.startswith("@"):
        return False
    p = Path(path)
    if not (p.name.startswith("listener-") and p.parent.name.startswith("pymp-")):
        return False
    if tmpdirs is None:
        return True
    socket_dir = os.path.normpath(str(p.parent.parent))
    return any(socket_dir == d or socket_dir.startswith(d.rstrip(os.sep) + os.sep) for d in tmpdirs)


def _tmpdir_variants(tmpdir: str) -> tuple[str, ...]:
    """The spellings under which ``tmpdir`` can show up in a socket path (as given, absolute, resolved)."""
    return tuple({os.path.normpath(tmpdir), os.path.normpath(os.path.abspath(tmpdir)), os.path.realpath(tmpdir)})


def _listening_unix_paths() -> set[str] | None:
    """Paths of all listening unix sockets on the host (Linux only; ``None`` when not available)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(_PROC_NET_UNIX, encoding="utf-8", errors="replace") as f:
            next(f, None)  # header
            paths: set[str] = set()
            for line in f:
                tokens = line.split()
                if len(tokens) < 8:
                    continue
                with contextlib.suppress(ValueError):
                    if int(tokens[3], 16) & _SO_ACCEPTCON:
                        paths.add(" ".join(tokens[7:]))
            return paths
    except OSError:
        return None


def _is_orphaned(proc: psutil.Process, ppid: int) -> bool:
    """Whether ``proc`` lost its original parent (reparented to init or its parent is gone)."""
    if ppid <= 1:
        return True
    try:
        parent = psutil.Process(ppid)
        # A parent can never be younger than its child; if it is, the pid was reused.
        if parent.create_time() > proc.create_time() or parent.status() == psutil.STATUS_ZOMBIE:
            return True
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.AccessDenied:
        return False
    return False


def find_manager_processes(tmpdir: str | None = None) -> list[ManagerProcess]:
    """
    Find ``multiprocessing`` Manager server processes.

    A Manager server is a process that owns a (listening) unix socket ``<tmpdir>/pymp-*/listener-*``.
    When ``tmpdir`` is given only sockets under that directory (at any depth) count.
    """
    tmpdirs = _tmpdir_variants(tmpdir) if tmpdir is not None else None
    listening = _listening_unix_paths()
    found: list[ManagerProcess] = []
    for proc in psutil.process_iter():
        try:
            conns = proc.net_connections(kind="unix")
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        socket_path = next(
            (
                c.laddr
                for c in conns
                if isinstance(c.laddr, str)
                and _is_manager_socket_path(c.laddr, tmpdirs)
                and (listening is None or c.laddr in listening)
            ),
            None,
        )
        if socket_path is None:
            continue
        try:
            with proc.oneshot():
                ppid = proc.ppid()
                create_time = proc.create_time()
                rss = proc.memory_info().rss
                cmdline = tuple(proc.cmdline())
            uss: int | None
            try:
                uss = proc.memory_full_info().uss
            except (psutil.AccessDenied, AttributeError):
                uss = None
            orphaned = _is_orphaned(proc, ppid)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            continue
        found.append(
            ManagerProcess(
                pid=proc.pid,
                ppid=ppid,
                create_time=create_time,
                rss=rss,
                uss=uss,
                cmdline=cmdline,
                socket_path=socket_path,
                orphaned=orphaned,
            )
        )
    return sorted(found, key=lambda m: (m.create_time, m.pid))


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
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, OSError):
            continue
    return matches


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` followed by all its live descendants (empty if ``pid`` is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


def _signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        # psutil refuses to signal a pid that was reused by another process.
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            proc.send_signal(sig)


def kill_processes(procs: Iterable[psutil.Process], grace: float = 5.0) -> list[psutil.Process]:
    """SIGTERM ``procs``, wait up to ``grace`` seconds, SIGKILL survivors; return the ones still alive."""
    procs = list(procs)
    _signal_all(procs, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    if alive:
        _signal_all(alive, signal.SIGKILL)
        _, alive = psutil.wait_procs(alive, timeout=5.0)
    return alive


def stop_process_tree(pid: int, grace: float = 10.0) -> list[psutil.Process]:
    """
    Stop ``pid`` and all its descendants; return processes that could not be stopped.

    Descendants are collected *before* signalling so children that get reparented while the root
    shuts down are still caught. The root gets SIGTERM and up to ``grace`` seconds to exit cleanly
    (taking its children with it); then every remaining descendant and the root get SIGKILL.
    """
    tree = process_tree(pid)
    if not tree:
        return []
    root, descendants = tree[0], tree[1:]
    _signal_all([root], signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(psutil.TimeoutExpired, psutil.NoSuchProcess):
        root.wait(timeout=grace)
    # Give the (already signalled) tree the rest of the grace period to finish on its own.
    psutil.wait_procs(descendants, timeout=max(0.0, deadline - time.monotonic()))
    # Children spawned late during shutdown are caught too (only while the root is verifiably alive).
    late: list[psutil.Process] = []
    if _alive(root):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            late = root.children(recursive=True)
    stragglers = {p.pid: p for p in [*descendants, *late]}
    survivors = [p for p in [*stragglers.values(), root] if _alive(p)]
    _signal_all(survivors, signal.SIGKILL)
    _, alive = psutil.wait_procs(survivors, timeout=5.0)
    with contextlib.suppress(psutil.TimeoutExpired, psutil.NoSuchProcess, ChildProcessError):
        root.wait(timeout=0)  # reap the root if it is our child
    return [p for p in alive if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
