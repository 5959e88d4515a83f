"""Find ``multiprocessing`` Manager servers: the processes that own a listening ``pymp-*/listener-*`` socket."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from airflow_executor_logs.utils.processes.state import orphan_reason

__all__ = ["ManagerProcess", "find_manager_processes", "owns_socket"]

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
                orphan_reason=orphan_reason(ppid, create_time),
            )
        )
    return sorted(found, key=lambda m: (m.create_time, m.pid))
