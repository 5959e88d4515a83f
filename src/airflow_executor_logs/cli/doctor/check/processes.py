"""The processes check: the doctor's summary of Manager servers and short-lived executor helpers, orphans among them."""

from __future__ import annotations

from airflow_executor_logs.cli.doctor.check.results import FAIL, OK, CheckResult
from airflow_executor_logs.cli.doctor.classify import KIND_OTHER, scan
from airflow_executor_logs.cli.doctor.helpers import HelperReport, find_helpers
from airflow_executor_logs.cli.doctor.output import format_bytes, summarize

__all__ = ["check_processes"]


def check_processes(tmpdir: str | None = None) -> CheckResult:
    """``ok`` without orphaned Managers or helpers (under ``tmpdir`` only, if given); else ``fail``, with the fix."""
    records = scan(tmpdir)
    shown = [record for record in records if record.kind != KIND_OTHER]
    summary = summarize(shown, len(records) - len(shown), None)
    helpers = HelperReport(find_helpers(tmpdir))
    details = {
        "managers": summary.shown,
        "orphans": summary.orphans,
        "orphan_memory_bytes": summary.orphan_memory,
        "helpers": len(helpers.records),
        "orphaned_helpers": helpers.orphaned,
    }
    line = (
        f"{summary.shown} Manager server(s), {summary.orphans} orphaned ({format_bytes(summary.orphan_memory)}); "
        f"{len(helpers.records)} helper(s), {helpers.orphaned} orphaned"
    )
    if summary.orphans or helpers.orphaned:
        fix = "airflow-executor-logs doctor --reap" + (f" --tmpdir {tmpdir}" if tmpdir else "")
        return CheckResult("processes", None, FAIL, line, fix, details)
    return CheckResult("processes", None, OK, line, None, details)
