"""The processes check: the doctor's Manager summary as one line, with --reap as the fix for orphans."""

from __future__ import annotations

from pathlib import Path

import psutil

from airflow_executor_logs.cli.doctor.check.processes import check_processes
from tests.unit.cli.doctor.lab import Lab
from tests.unit.cli.doctor.test_helpers import orphaned_helper, tmpdir_env  # noqa: F401  # fixtures


def test_no_managers_is_ok(lab: Lab) -> None:
    result = check_processes(str(lab.tmpdir))
    assert (result.status, result.summary) == ("ok", "0 Manager server(s), 0 orphaned (0 B); 0 helper(s), 0 orphaned")


def test_an_orphan_fails_with_reap_as_the_fix(lab: Lab) -> None:
    lab.orphan()
    result = check_processes(str(lab.tmpdir))
    assert result.status == "fail"
    assert result.summary.startswith("1 Manager server(s), 1 orphaned (")
    assert result.fix == f"airflow-executor-logs doctor --reap --tmpdir {lab.tmpdir}"
    assert result.details["orphans"] == 1


def test_an_orphaned_helper_fails_with_reap_as_the_fix(tmpdir_env: Path, orphaned_helper: psutil.Process) -> None:  # noqa: F811
    result = check_processes(str(tmpdir_env))
    assert result.status == "fail"
    assert result.summary.endswith("; 1 helper(s), 1 orphaned")
    assert result.fix == f"airflow-executor-logs doctor --reap --tmpdir {tmpdir_env}"
    assert orphaned_helper.is_running()  # reported, not touched: the check is read-only
