"""Reaping: stop the orphaned Managers, after checking each is still the same orphaned Manager server."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from airflow_executor_logs.cli.doctor.classify import KIND_ORPHANED, ManagerRecord
from airflow_executor_logs.cli.doctor.options import DEFAULT_GRACE
from airflow_executor_logs.utils.processes import Outcome, StopResult, is_gone, orphan_reason, owns_socket, stop_each
from airflow_executor_logs.utils.processes.managers import (
    forkserver_lineage,
    is_forkserver_cmdline,
    is_resource_tracker_cmdline,
)

__all__ = ["FAILED", "GONE", "REAPED", "SKIPPED", "ReapResult", "reap"]

REAPED = "reaped"
GONE = "gone"
SKIPPED = "skipped"
FAILED = "failed"

_KILL_WAIT = 5.0


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


def _verify(record: ManagerRecord) -> tuple[psutil.Process | None, str]:
    """The live process behind ``record`` if it is still the same orphaned Manager, else a reason."""
    try:
        proc = psutil.Process(record.pid)
        if proc.create_time() != record.create_time:
            return None, "pid reused by another process"
        if is_gone(proc):
            return None, "already exited"
        ppid = proc.ppid()
        still_a_manager = owns_socket(proc, record.socket_path)
    except psutil.NoSuchProcess:
        return None, "already exited"
    except psutil.AccessDenied:
        return None, "permission denied"
    if forkserver_lineage(record.pid, ppid, record.create_time)[2] is None:
        return None, f"no longer orphaned (ppid {ppid})"
    if not still_a_manager:
        return None, "no longer a Manager server"
    return proc, ""


def _result(record: ManagerRecord, stopped: StopResult[psutil.Process]) -> ReapResult:
    if stopped.outcome == Outcome.STOPPED and stopped.sent is not None:
        return ReapResult(record.pid, REAPED, stopped.sent.name, record.memory)
    if stopped.outcome == Outcome.GONE:
        return ReapResult(record.pid, GONE, "exited before it was signalled")
    if stopped.outcome == Outcome.DENIED:
        detail = "permission denied" if stopped.sent is None else "permission denied for SIGKILL"
        return ReapResult(record.pid, FAILED, detail)
    if stopped.outcome == Outcome.SKIPPED:
        return ReapResult(record.pid, SKIPPED, "not signalled")
    return ReapResult(record.pid, FAILED, "still running after SIGKILL")


def reap(records: Iterable[ManagerRecord], grace: float = DEFAULT_GRACE) -> list[ReapResult]:
    """
    Stop the orphaned Managers among ``records``: SIGTERM, then SIGKILL after ``grace`` seconds.

    Records not classified as orphaned are never touched. Each orphan's pid, start time, orphan status
    and Manager socket are checked again right before it is signalled.
    """
    results: dict[int, ReapResult] = {}
    verified: list[tuple[ManagerRecord, psutil.Process]] = []
    orphans = [record for record in records if record.kind == KIND_ORPHANED]
    for record in orphans:
        proc, reason = _verify(record)
        if proc is None:
            outcome = GONE if reason == "already exited" else SKIPPED
            results[record.pid] = ReapResult(record.pid, outcome, reason)
        else:
            verified.append((record, proc))
    stopped = stop_each([proc for _, proc in verified], grace, kill_wait=_KILL_WAIT)
    for (record, _), result in zip(verified, stopped, strict=True):
        results[record.pid] = _result(record, result)
    stop_each(_orphaned_helpers(record for record, _ in verified), grace, kill_wait=_KILL_WAIT)
    return [results[record.pid] for record in orphans]


def _orphaned_helpers(records: Iterable[ManagerRecord]) -> list[psutil.Process]:
    """
    The forkservers and resource trackers of reaped Managers, if each is still one and still orphaned.

    A resource tracker exits by itself once the last process holding its pipe is gone; one that has
    not by now is stopped too.
    """
    helpers: list[psutil.Process] = []
    for pid in dict.fromkeys(pid for record in records for pid in record.helpers):
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                cmdline, ppid, started = proc.cmdline(), proc.ppid(), proc.create_time()
        except psutil.Error:
            continue
        helper = is_forkserver_cmdline(cmdline) or is_resource_tracker_cmdline(cmdline)
        if helper and orphan_reason(ppid, started) is not None and not is_gone(proc):
            helpers.append(proc)
    return helpers
