"""The processes check: the doctor's summary of Manager servers on this host, and the orphans among them."""

from __future__ import annotations

from airflow_executor_logs.cli.doctor.check.results import FAIL, OK, CheckResult
from airflow_executor_logs.cli.doctor.classify import KIND_OTHER, scan
from airflow_executor_logs.cli.doctor.output import format_bytes, summarize

__all__ = ["check_processes"]


def check_processes(tmpdir: str | None = None) -> CheckResult:
    """``ok`` without orphaned Managers (sockets under ``tmpdir`` only, if given); ``fail`` with the fix otherwise."""
    records = scan(tmpdir)
    shown = [record for record in records if record.kind != KIND_OTHER]
    summary = summarize(shown, len(records) - len(shown), None)
    details = {"managers": summary.shown, "orphans": summary.orphans, "orphan_memory_bytes": summary.orphan_memory}
    line = f"{summary.shown} Manager server(s), {summary.orphans} orphaned ({format_bytes(summary.orphan_memory)})"
    if summary.orphans:
        fix = "airflow-executor-logs doctor --reap" + (f" --tmpdir {tmpdir}" if tmpdir else "")
        return CheckResult("processes", None, FAIL, line, fix, details)
    return CheckResult("processes", None, OK, line, None, details)
