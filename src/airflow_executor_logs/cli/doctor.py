"""
``doctor``: find the ``multiprocessing`` Manager servers on this host, and reap the orphaned ones.

A Manager server is recognised by the listening ``pymp-*/listener-*`` unix socket it owns. It is
classified by its parent:

* ``orphaned``: its parent is gone (it was reparented to PID 1 or to an init/subreaper such as
  ``tini``), so nothing can use or shut it down any more. These are what ``--reap`` stops;
* ``airflow``: a live child of an Airflow process (API server master or worker, scheduler, ...),
  recognised by command line, including the titles gunicorn and Airflow give their processes;
* ``other``: a live child of anything else; only listed with ``--all``, never touched.

A forked Manager inherits its parent's process title, so an orphan's own command line tells what it
was forked from (``forked from airflow api-server worker``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

import psutil

from airflow_executor_logs.utils.processes import ManagerProcess, find_manager_processes

__all__ = [
    "DEFAULT_GRACE",
    "DESCRIPTION",
    "EXIT_OK",
    "EXIT_ORPHANS",
    "EXIT_USAGE",
    "HELP",
    "OPTIONS",
    "ManagerRecord",
    "ReapResult",
    "add_arguments",
    "airflow_command",
    "airflow_role",
    "classify",
    "format_age",
    "format_bytes",
    "reap",
    "run",
    "scan",
]

EXIT_OK = 0
EXIT_ORPHANS = 1
EXIT_USAGE = 2

KIND_ORPHANED = "orphaned"
KIND_AIRFLOW = "airflow"
KIND_OTHER = "other"

DEFAULT_GRACE = 5.0
_KILL_WAIT = 5.0
_POLL_INTERVAL = 0.05

#: Names of init processes and subreapers that adopt orphans; a Manager whose parent is one is orphaned.
INIT_NAMES = frozenset({"init", "systemd", "tini", "dumb-init", "catatonit", "docker-init", "s6-svscan", "runsvdir"})
_MP_CHILD_MARKERS = ("multiprocessing.spawn", "multiprocessing.forkserver", "--multiprocessing-fork")
_SUBCOMMAND = re.compile(r"[a-z][a-z0-9_-]*")

HELP = "Find multiprocessing Manager servers left by executors; report (and --reap) orphaned ones"
DESCRIPTION = (
    "Lists the multiprocessing Manager server processes on this host that belong to Airflow processes or "
    "have been orphaned, with their memory. Exit code: 0 when there are no orphans (or all were reaped), "
    "1 when orphans remain, 2 on usage errors."
)


def _non_negative_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if seconds < 0 or seconds != seconds:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value!r}")
    return seconds


#: ``(flags, argparse keyword arguments)`` of every doctor option; shared by our parser and Airflow's CLI.
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--all",), {"dest": "all", "action": "store_true", "help": "Also list Managers of non-Airflow processes."}),
    (
        ("--reap",),
        {
            "dest": "reap",
            "action": "store_true",
            "help": "Terminate orphaned Managers (SIGTERM, then SIGKILL after --grace seconds).",
        },
    ),
    (
        ("--grace",),
        {
            "dest": "grace",
            "type": _non_negative_seconds,
            "default": DEFAULT_GRACE,
            "metavar": "SECONDS",
            "help": f"Seconds between SIGTERM and SIGKILL with --reap (default {DEFAULT_GRACE:g}).",
        },
    ),
    (("--json",), {"dest": "json", "action": "store_true", "help": "Print JSON (records and a summary)."}),
    (
        ("--tmpdir",),
        {
            "dest": "tmpdir",
            "default": None,
            "metavar": "DIR",
            "help": "Only Managers whose socket lives under DIR (the TMPDIR of the processes to check).",
        },
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the doctor options to ``parser``."""
    for flags, kwargs in OPTIONS:
        parser.add_argument(*flags, **kwargs)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagerRecord:
    """One Manager server process and what the doctor made of it."""

    pid: int
    ppid: int
    create_time: float
    rss: int
    uss: int | None
    cmdline: tuple[str, ...]
    socket_path: str
    kind: str
    origin: str
    forked_from: str | None = None

    @property
    def orphaned(self) -> bool:
        return self.kind == KIND_ORPHANED

    @property
    def memory(self) -> int:
        """Memory that stopping the process frees: USS, or RSS when USS is unreadable."""
        return self.uss if self.uss is not None else self.rss

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.create_time)


def _words(cmdline: Sequence[str]) -> list[str]:
    # A title set with setproctitle is one argument with spaces; split everything the same way.
    return " ".join(cmdline).split()


def _airflow_subcommand(words: Sequence[str]) -> str | None:
    """``airflow <subcommand>`` when the command runs the ``airflow`` CLI (as script, ``-m`` or title)."""
    for index, word in enumerate(words[:3]):
        if os.path.basename(word) != "airflow":
            continue
        before = words[:index]
        launched = not before or before[-1] == "-m" or os.path.basename(before[0]).startswith("python")
        if not launched:
            return None
        following = words[index + 1] if index + 1 < len(words) else ""
        if _SUBCOMMAND.fullmatch(following):
            return "airflow " + following.replace("_", "-")
        return "airflow"
    return None


def airflow_role(cmdline: Sequence[str], parent_cmdline: Sequence[str] | None = None) -> str | None:
    """
    What Airflow process a command line belongs to (``airflow api-server worker``, ``airflow scheduler``).

    ``parent_cmdline`` identifies ``multiprocessing`` spawn children (uvicorn's API server workers),
    whose own command line does not say what they are. ``None`` for non-Airflow processes.
    """
    words = _words(cmdline)
    text = " ".join(words)
    if not words:
        return None
    if text.startswith("gunicorn: worker") or "airflow api-server worker" in text:
        return "airflow api-server worker"
    if text.startswith("gunicorn: master"):
        return "airflow api-server"
    subcommand = _airflow_subcommand(words)
    if subcommand is not None:
        return subcommand
    if parent_cmdline is not None and any(marker in text for marker in _MP_CHILD_MARKERS):
        parent_role = airflow_role(parent_cmdline)
        if parent_role == "airflow api-server":
            return "airflow api-server worker"
        if parent_role is not None:
            return f"{parent_role} subprocess"
    if "airflow" in text and any(os.path.basename(word) == "uvicorn" for word in words):
        return "airflow api-server"
    return None


def _orphan_reason(ppid: int, create_time: float) -> str | None:
    """Why a process with this ppid and start time is orphaned, or ``None`` when its parent lives."""
    if ppid <= 1:
        return f"ppid {ppid}"
    try:
        parent = psutil.Process(ppid)
        if parent.create_time() > create_time:
            return f"parent {ppid} gone"  # the pid was reused by a younger process
        if parent.status() == psutil.STATUS_ZOMBIE:
            return f"parent {ppid} exited"
        name = parent.name()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return f"parent {ppid} gone"
    except psutil.AccessDenied:
        return None
    if name in INIT_NAMES:
        return f"adopted by {name} {ppid}"
    return None


def _cmdline_of(pid: int) -> tuple[str, ...] | None:
    try:
        return tuple(psutil.Process(pid).cmdline())
    except psutil.Error:
        return None


def _parent_role(ppid: int) -> tuple[str | None, str]:
    """The Airflow role of process ``ppid`` (or ``None``) and a short name for it."""
    try:
        parent = psutil.Process(ppid)
        cmdline = tuple(parent.cmdline())
        name = parent.name()
        grandparent_cmdline = _cmdline_of(parent.ppid())
    except psutil.Error:
        return None, "?"
    return airflow_role(cmdline, grandparent_cmdline), name


def classify(manager: ManagerProcess) -> ManagerRecord:
    """Decide whether ``manager`` is orphaned, a child of an Airflow process, or something else."""
    forked_from = airflow_role(manager.cmdline)
    reason = _orphan_reason(manager.ppid, manager.create_time)
    if reason is not None:
        kind = KIND_ORPHANED
        origin = f"orphaned ({reason})" + (f", forked from {forked_from}" if forked_from else "")
    else:
        role, name = _parent_role(manager.ppid)
        if role is not None:
            kind, origin = KIND_AIRFLOW, f"child of {role} {manager.ppid}"
        else:
            kind, origin = KIND_OTHER, f"child of non-Airflow process {manager.ppid} ({name})"
    return ManagerRecord(
        pid=manager.pid,
        ppid=manager.ppid,
        create_time=manager.create_time,
        rss=manager.rss,
        uss=manager.uss,
        cmdline=manager.cmdline,
        socket_path=manager.socket_path,
        kind=kind,
        origin=origin,
        forked_from=forked_from,
    )


def scan(tmpdir: str | None = None) -> list[ManagerRecord]:
    """Every Manager server on the host (with ``tmpdir``: whose socket is under it), classified."""
    return [classify(manager) for manager in find_manager_processes(tmpdir)]


# --------------------------------------------------------------------------------------------
# Reaping
# --------------------------------------------------------------------------------------------

REAPED = "reaped"
GONE = "gone"
SKIPPED = "skipped"
FAILED = "failed"


@dataclass(frozen=True)
class ReapResult:
    """What ``--reap`` did to one orphan: ``reaped`` (by ``detail`` signal), ``gone``, ``skipped`` or ``failed``."""

    pid: int
    outcome: str
    detail: str
    freed: int = 0

    @property
    def remains(self) -> bool:
        """Whether the orphan may still be running."""
        return self.outcome in (SKIPPED, FAILED)


def _is_gone(proc: psutil.Process) -> bool:
    # PID 1 of a container may never reap: an exited orphan then stays a zombie, which holds no memory.
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.AccessDenied:
        return False


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> set[int]:
    """Wait up to ``timeout`` seconds for ``procs`` to exit; return the pids that did."""
    pending = {proc.pid: proc for proc in procs}
    gone: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        for pid, proc in list(pending.items()):
            if _is_gone(proc):
                gone.add(pid)
                del pending[pid]
        if not pending or time.monotonic() >= deadline:
            return gone
        time.sleep(_POLL_INTERVAL)


def _owns_socket(proc: psutil.Process, socket_path: str) -> bool:
    connections = proc.net_connections(kind="unix")
    return any(connection.laddr == socket_path for connection in connections)


def _verify(record: ManagerRecord) -> tuple[psutil.Process | None, str]:
    """The live process behind ``record`` if it is still the same orphaned Manager, else a reason."""
    try:
        proc = psutil.Process(record.pid)
        if proc.create_time() != record.create_time:
            return None, "pid reused by another process"
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None, "already exited"
        ppid = proc.ppid()
        owns_socket = _owns_socket(proc, record.socket_path)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None, "already exited"
    except psutil.AccessDenied:
        return None, "permission denied"
    if _orphan_reason(ppid, record.create_time) is None:
        return None, f"no longer orphaned (ppid {ppid})"
    if not owns_socket:
        return None, "no longer a Manager server"
    return proc, ""


def _send(proc: psutil.Process, sig: int) -> str | None:
    """Send ``sig`` unless the pid now names another process; ``None`` on success, else an outcome."""
    try:
        if not proc.is_running():  # compares the start time psutil recorded: guards against pid reuse
            return GONE
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return GONE
    except psutil.AccessDenied:
        return FAILED
    return None


def reap(records: Iterable[ManagerRecord], grace: float = DEFAULT_GRACE) -> list[ReapResult]:
    """
    Stop the orphaned Managers among ``records``: SIGTERM, then SIGKILL after ``grace`` seconds.

    Records not classified as orphaned are never touched. Each orphan's pid, start time, orphan status
    and Manager socket are checked again right before it is signalled.
    """
    results: dict[int, ReapResult] = {}
    signalled: dict[int, tuple[ManagerRecord, psutil.Process]] = {}
    orphans = [record for record in records if record.orphaned]
    for record in orphans:
        proc, reason = _verify(record)
        if proc is None:
            outcome = GONE if reason == "already exited" else SKIPPED
            results[record.pid] = ReapResult(record.pid, outcome, reason)
            continue
        failure = _send(proc, signal.SIGTERM)
        if failure is None:
            signalled[record.pid] = (record, proc)
        else:
            detail = "permission denied" if failure == FAILED else "exited before it was signalled"
            results[record.pid] = ReapResult(record.pid, failure, detail)

    terminated = _wait_gone([proc for _, proc in signalled.values()], grace)
    survivors: list[tuple[ManagerRecord, psutil.Process]] = []
    for pid, (record, proc) in signalled.items():
        if pid in terminated:
            results[pid] = ReapResult(pid, REAPED, "SIGTERM", record.memory)
        else:
            survivors.append((record, proc))

    killed: list[tuple[ManagerRecord, psutil.Process]] = []
    for record, proc in survivors:
        failure = _send(proc, signal.SIGKILL)
        if failure == FAILED:
            results[record.pid] = ReapResult(record.pid, FAILED, "permission denied for SIGKILL")
        else:
            killed.append((record, proc))
    dead = _wait_gone([proc for _, proc in killed], _KILL_WAIT)
    for record, proc in killed:
        if proc.pid in dead:
            results[record.pid] = ReapResult(record.pid, REAPED, "SIGKILL", record.memory)
        else:
            results[record.pid] = ReapResult(record.pid, FAILED, "still running after SIGKILL")
    return [results[record.pid] for record in orphans]


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def format_bytes(size: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``110.2 MiB``; ``-`` for unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_age(seconds: float) -> str:
    """``42s``, ``5m12s``, ``3h04m``, ``2d03h``."""
    total = int(max(seconds, 0))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _table(records: Sequence[ManagerRecord]) -> list[str]:
    header = ("PID", "PPID", "AGE", "RSS", "USS", "ORIGIN")
    rows = [
        (str(r.pid), str(r.ppid), format_age(r.age), format_bytes(r.rss), format_bytes(r.uss), r.origin)
        for r in records
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.rjust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return lines


@dataclass(frozen=True)
class _Summary:
    shown: int
    hidden: int
    orphans: int
    orphan_memory: int
    reaped: int
    freed: int
    remaining: int

    @property
    def exit_code(self) -> int:
        return EXIT_ORPHANS if self.remaining else EXIT_OK


def _summarize(shown: Sequence[ManagerRecord], hidden: int, results: Sequence[ReapResult] | None) -> _Summary:
    orphans = [record for record in shown if record.orphaned]
    if results is None:
        reaped, freed, remaining = 0, 0, len(orphans)
    else:
        reaped = sum(1 for result in results if result.outcome == REAPED)
        freed = sum(result.freed for result in results)
        remaining = sum(1 for result in results if result.remains)
    return _Summary(
        shown=len(shown),
        hidden=hidden,
        orphans=len(orphans),
        orphan_memory=sum(record.memory for record in orphans),
        reaped=reaped,
        freed=freed,
        remaining=remaining,
    )


def _record_json(record: ManagerRecord, result: ReapResult | None) -> dict[str, Any]:
    return {
        "pid": record.pid,
        "ppid": record.ppid,
        "create_time": record.create_time,
        "age_seconds": round(record.age, 1),
        "rss_bytes": record.rss,
        "uss_bytes": record.uss,
        "memory_bytes": record.memory,
        "kind": record.kind,
        "orphaned": record.orphaned,
        "origin": record.origin,
        "forked_from": record.forked_from,
        "socket_path": record.socket_path,
        "cmdline": [arg for arg in record.cmdline if arg],  # setproctitle pads with empty args
        "reap": None
        if result is None
        else {"outcome": result.outcome, "detail": result.detail, "freed_bytes": result.freed},
    }


def _print_json(
    shown: Sequence[ManagerRecord], results: dict[int, ReapResult] | None, summary: _Summary, out: TextIO
) -> None:
    document = {
        "hostname": socket.gethostname(),
        "managers": [_record_json(record, (results or {}).get(record.pid)) for record in shown],
        "summary": {
            "managers": summary.shown,
            "hidden": summary.hidden,
            "orphans": summary.orphans,
            "orphan_memory_bytes": summary.orphan_memory,
            "reaped": summary.reaped,
            "freed_bytes": summary.freed,
            "remaining_orphans": summary.remaining,
            "exit_code": summary.exit_code,
        },
    }
    json.dump(document, out, indent=2)
    out.write("\n")


def _print_text(
    shown: Sequence[ManagerRecord], results: dict[int, ReapResult] | None, summary: _Summary, out: TextIO
) -> None:
    def say(line: str = "") -> None:
        out.write(line + "\n")

    if shown:
        for line in _table(shown):
            say(line)
        say()
    hidden = f"; {summary.hidden} of non-Airflow processes not shown (--all)" if summary.hidden else ""
    say(
        f"{summary.shown} Manager server(s), {summary.orphans} orphaned "
        f"({format_bytes(summary.orphan_memory)}){hidden}."
    )
    if results is None:
        if summary.orphans:
            say("Run with --reap to terminate the orphans.")
        return
    for record in shown:
        result = results.get(record.pid)
        if result is None:
            continue
        if result.outcome == REAPED:
            say(f"Reaped {record.pid} ({result.detail}), freed {format_bytes(result.freed)}.")
        else:
            say(f"Not reaped {record.pid}: {result.outcome}, {result.detail}.")
    say(f"Reaped {summary.reaped} of {summary.orphans} orphan(s), freed {format_bytes(summary.freed)}.")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the doctor for parsed ``args``; return the exit code."""
    out = out if out is not None else sys.stdout
    records = scan(getattr(args, "tmpdir", None))
    show_all = bool(getattr(args, "all", False))
    shown = [record for record in records if show_all or record.kind != KIND_OTHER]
    hidden = len(records) - len(shown)
    results: dict[int, ReapResult] | None = None
    if getattr(args, "reap", False):
        grace = float(getattr(args, "grace", DEFAULT_GRACE))
        results = {result.pid: result for result in reap(shown, grace)}
    summary = _summarize(shown, hidden, None if results is None else list(results.values()))
    if getattr(args, "json", False):
        _print_json(shown, results, summary, out)
    else:
        _print_text(shown, results, summary, out)
    out.flush()
    return summary.exit_code


def airflow_command(args: argparse.Namespace) -> NoReturn:
    """Entry for ``airflow executor-logs doctor``: Airflow's CLI ignores return values, so exit."""
    sys.exit(run(args))
