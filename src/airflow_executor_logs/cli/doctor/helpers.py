"""
The zygote helpers on this host (one per API worker that read through a short-lived executor).

A live helper is listed with the worker it serves: it is not a leak. One whose worker is gone (possible
only where the kernel's parent-death signal is not available, or from a release without it) is
orphaned: reported like an orphaned Manager, and stopped with ``--reap``, with whatever it still runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from airflow_executor_logs.cli.doctor.classify import parent_role
from airflow_executor_logs.cli.doctor.reap import FAILED, GONE, REAPED, SKIPPED, ReapResult
from airflow_executor_logs.utils.processes import Outcome, is_gone, orphan_reason, stop_each
from airflow_executor_logs.utils.zygote_helper import is_helper_cmdline

__all__ = ["HelperRecord", "HelperReport", "find_helpers", "reap_helpers"]

_KILL_WAIT = 5.0


@dataclass(frozen=True)
class HelperRecord:
    """One helper: who it is, and its worker (``origin``) or why it is orphaned."""

    pid: int
    ppid: int
    create_time: float
    rss: int
    orphan_reason: str | None
    origin: str

    @property
    def orphaned(self) -> bool:
        return self.orphan_reason is not None

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.create_time)

    def as_dict(self, result: ReapResult | None) -> dict[str, Any]:
        reap = None if result is None else {"outcome": result.outcome, "detail": result.detail}
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "create_time": self.create_time,
            "age_seconds": round(self.age, 1),
            "rss_bytes": self.rss,
            "orphaned": self.orphaned,
            "origin": self.origin,
            "reap": reap,
        }


@dataclass(frozen=True)
class HelperReport:
    """The helpers found, and with ``--reap`` what happened to the orphaned ones (by pid)."""

    records: list[HelperRecord]
    results: dict[int, ReapResult] | None = None

    @property
    def orphaned(self) -> int:
        return sum(1 for record in self.records if record.orphaned)

    @property
    def remaining(self) -> int:
        """Orphaned helpers that may still run."""
        if self.results is None:
            return self.orphaned
        return sum(1 for result in self.results.values() if result.remains)


def _under(tmpdir: str | None, proc: psutil.Process) -> bool:
    if tmpdir is None:
        return True
    value = proc.environ().get("TMPDIR", "")
    return bool(value) and os.path.realpath(value).startswith(os.path.realpath(tmpdir))


def find_helpers(tmpdir: str | None = None) -> list[HelperRecord]:
    """Every helper on the host (with ``tmpdir``: those whose TMPDIR is under it), oldest first."""
    found = []
    for proc in psutil.process_iter():
        try:
            if not is_helper_cmdline(proc.cmdline()) or is_gone(proc) or not _under(tmpdir, proc):
                continue
            with proc.oneshot():
                ppid, started, rss = proc.ppid(), proc.create_time(), proc.memory_info().rss
            reason = orphan_reason(ppid, started)
            if reason is None:
                role, name = parent_role(ppid)
                origin = f"helper of {role or name} {ppid}"
            else:
                origin = f"orphaned ({reason})"
        except (psutil.Error, OSError):
            continue
        found.append(HelperRecord(proc.pid, ppid, started, rss, reason, origin))
    return sorted(found, key=lambda record: (record.create_time, record.pid))


def reap_helpers(records: Iterable[HelperRecord], grace: float) -> dict[int, ReapResult]:
    """
    Stop the orphaned helpers among ``records`` (SIGTERM: each stops what it runs; SIGKILL after ``grace``),
    then anything of their trees still left. Each is checked again first: same process, still a helper,
    still orphaned.
    """
    results: dict[int, ReapResult] = {}
    for record in records:
        if not record.orphaned:
            continue
        try:
            proc = psutil.Process(record.pid)
            if proc.create_time() != record.create_time or is_gone(proc):
                results[record.pid] = ReapResult(record.pid, GONE, "already exited")
                continue
            if not is_helper_cmdline(proc.cmdline()) or orphan_reason(proc.ppid(), record.create_time) is None:
                results[record.pid] = ReapResult(record.pid, SKIPPED, "no longer an orphaned helper")
                continue
            tree = proc.children(recursive=True)
        except psutil.Error:
            results[record.pid] = ReapResult(record.pid, GONE, "already exited")
            continue
        stopped = stop_each([proc], grace, kill_wait=_KILL_WAIT)[0]
        stop_each([child for child in tree if not is_gone(child)], 0.0, kill_wait=_KILL_WAIT)
        if stopped.outcome == Outcome.STOPPED and stopped.sent is not None:
            results[record.pid] = ReapResult(record.pid, REAPED, stopped.sent.name)
        elif stopped.outcome == Outcome.GONE:
            results[record.pid] = ReapResult(record.pid, GONE, "exited before it was signalled")
        else:
            results[record.pid] = ReapResult(record.pid, FAILED, stopped.outcome.value)
    return results
