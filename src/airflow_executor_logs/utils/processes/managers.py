"""
Find ``multiprocessing`` Manager servers: the processes that own a listening ``pymp-*/listener-*`` socket.

A ``forkserver`` owns such a socket too, but is no Manager: it is skipped. A Manager started under the
``forkserver`` start method (Python 3.14's default) is the forkserver's child and carries its command
line; it is orphaned when that forkserver has lost the process that started it, and is reported with
the forkserver and the resource tracker it shares, so all three are reaped together.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from airflow_executor_logs.utils.processes.state import orphan_reason

__all__ = [
    "ManagerProcess",
    "find_manager_processes",
    "forkserver_lineage",
    "is_forkserver_cmdline",
    "is_manager",
    "is_resource_tracker_cmdline",
    "owns_socket",
    "pipe_inodes",
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
    orphan_reason: str | None
    """Why it is orphaned (see :func:`~airflow_executor_logs.utils.processes.orphan_reason`), or ``None``."""
    forkserver: int | None = None
    """The pid of the forkserver it was started by (its parent), if any."""
    helpers: tuple[int, ...] = ()
    """The forkserver and resource tracker that go with it (stopped with it when it is reaped)."""
    started_by: int | None = None
    """The process that started it: its parent, or its forkserver's parent."""

    @property
    def orphaned(self) -> bool:
        """Whether its parent was gone when it was found."""
        return self.orphan_reason is not None

    @property
    def memory(self) -> int:
        """Memory that stopping the process frees: USS, or RSS when USS is unreadable."""
        return self.uss if self.uss is not None else self.rss

    @property
    def age(self) -> float:
        """Seconds since the process was created."""
        return max(0.0, time.time() - self.create_time)


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


_FORKSERVER_MAIN = "from multiprocessing.forkserver import main"
_RESOURCE_TRACKER_MAIN = "from multiprocessing.resource_tracker import main"


def is_forkserver_cmdline(cmdline: tuple[str, ...] | list[str]) -> bool:
    """Whether a command line is a ``multiprocessing`` forkserver's (or that of a process it forked)."""
    return any(_FORKSERVER_MAIN in argument for argument in cmdline)


def is_resource_tracker_cmdline(cmdline: tuple[str, ...] | list[str]) -> bool:
    """Whether a command line is a ``multiprocessing`` resource tracker's."""
    return any(_RESOURCE_TRACKER_MAIN in argument for argument in cmdline)


def pipe_inodes(pid: int) -> set[str]:
    """The pipes process ``pid`` holds open (``pipe:[inode]``); empty when unreadable."""
    found: set[str] = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return found
    for name in names:
        with contextlib.suppress(OSError):
            target = os.readlink(os.path.join(fd_dir, name))
            if target.startswith("pipe:"):
                found.add(target)
    return found


def forkserver_lineage(pid: int, ppid: int, create_time: float) -> tuple[int | None, int, str | None, tuple[int, ...]]:
    """
    For a process forked by a forkserver: the forkserver, who started it, why it is orphaned, and its helpers.

    ``(None, ppid, orphan_reason, ())`` for any other process.
    """
    try:
        parent = psutil.Process(ppid)
        parent_cmdline = tuple(parent.cmdline())
        forkserver_ppid, forkserver_started = parent.ppid(), parent.create_time()
    except psutil.Error:
        return None, ppid, orphan_reason(ppid, create_time), ()
    if not is_forkserver_cmdline(parent_cmdline) or parent_cmdline != tuple(psutil.Process(pid).cmdline()):
        return None, ppid, orphan_reason(ppid, create_time), ()
    reason = orphan_reason(forkserver_ppid, forkserver_started)
    if reason is not None:
        reason = f"its forkserver {ppid} lost its parent: {reason}"
    held = pipe_inodes(pid)
    trackers = tuple(proc.pid for proc in psutil.process_iter() if _is_tracker(proc) and held & pipe_inodes(proc.pid))
    return ppid, forkserver_ppid, reason, (ppid, *trackers)


def _is_tracker(proc: psutil.Process) -> bool:
    try:
        return is_resource_tracker_cmdline(proc.cmdline())
    except psutil.Error:
        return False


def is_manager(proc: psutil.Process) -> bool:
    """Whether ``proc`` holds a Manager server's ``pymp-*/listener-*`` socket (``False`` if unreadable)."""
    try:
        connections = proc.net_connections(kind="unix")
    except psutil.Error:
        return False
    return any(isinstance(c.laddr, str) and _is_manager_socket_path(c.laddr, None) for c in connections)


def owns_socket(proc: psutil.Process, socket_path: str) -> bool:
    """Whether ``proc`` holds the unix socket bound to ``socket_path`` (raises :class:`psutil.Error`)."""
    return any(connection.laddr == socket_path for connection in proc.net_connections(kind="unix"))


def find_manager_processes(tmpdir: str | None = None) -> list[ManagerProcess]:
    """
    Find ``multiprocessing`` Manager server processes, oldest first.

    A Manager server is a process that owns a (listening) unix socket ``<tmpdir>/pymp-*/listener-*``.
    When ``tmpdir`` is given only sockets under that directory (at any depth) count.
    """
    tmpdirs = _tmpdir_variants(tmpdir) if tmpdir is not None else None
    listening = _listening_unix_paths()
    found: list[ManagerProcess] = []
    for proc in psutil.process_iter():
        try:
            conns = proc.net_connections(kind="unix")
        except psutil.Error:
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
            if is_forkserver_cmdline(cmdline) and _is_the_forkserver(proc, ppid, cmdline):
                continue  # the forkserver itself: it listens on a pymp-* socket, but serves no Manager
            forkserver, started_by, reason, helpers = forkserver_lineage(proc.pid, ppid, create_time)
            uss: int | None
            try:
                uss = proc.memory_full_info().uss
            except (psutil.AccessDenied, AttributeError):
                uss = None
        except psutil.Error:
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
                orphan_reason=reason,
                forkserver=forkserver,
                helpers=helpers,
                started_by=started_by,
            )
        )
    return sorted(found, key=lambda m: (m.create_time, m.pid))


def _is_the_forkserver(proc: psutil.Process, ppid: int, cmdline: tuple[str, ...]) -> bool:
    """
    Whether a process with a forkserver's command line is the forkserver, not a process it forked.

    Its children share its command line; a child's parent is a forkserver while it lives, and a Manager
    server runs an accepting thread, where the forkserver runs one thread only.
    """
    try:
        if tuple(psutil.Process(ppid).cmdline()) == cmdline:
            return False
    except psutil.Error:
        pass
    return proc.num_threads() == 1
