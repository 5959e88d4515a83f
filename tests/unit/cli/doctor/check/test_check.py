"""The whole check, in process: its order of lines, the database unreadable, and --json through main()."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from airflow_executor_logs.cli import main
from airflow_executor_logs.cli.doctor import check
from airflow_executor_logs.cli.doctor.check import running
from airflow_executor_logs.cli.doctor.check.results import SCHEMA
from airflow_executor_logs.config import Settings
from tests.support.airflow_state import executors_configured


@pytest.fixture
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(limit: int = running.LIMIT) -> list[running.RunningTask]:
        raise RuntimeError("no such table: task_instance\n[SQL: SELECT ...]")

    monkeypatch.setattr(running, "running_tasks", unreadable)


def test_an_unreadable_database_fails_served_logs_only(no_database: None, settings: Settings, tmp_path: Path) -> None:
    with executors_configured("LocalExecutor"):
        report = check.collect(str(tmp_path))
    checks = [(r.check, r.subject) for r in report.results]
    assert checks == [
        ("enabled", None),
        ("remote-logging", None),
        ("executor", "LocalExecutor"),
        ("served-logs", None),
        ("processes", None),
    ]
    served = report.results[3]
    assert (served.status, served.summary) == (
        "fail",
        "cannot read the RUNNING task instances: RuntimeError: no such table: task_instance",
    )
    assert served.fix == "check [database] sql_alchemy_conn"


def test_json_through_main(
    no_database: None, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with executors_configured("LocalExecutor"):
        code = main(["doctor", "check", "--json", "--tmpdir", str(tmp_path)])
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, SCHEMA)
    assert code == document["exit_code"] == 1
    assert document["network_seconds"] <= document["seconds"]


def test_json_standard_output_is_the_document_alone(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """What Airflow logs to standard output while the checks run (3.2's alembic plugins) goes to standard error."""
    import os
    import sys

    from airflow_executor_logs.cli.doctor.check.results import OK, CheckResult

    def noisy(tmpdir: str | None = None) -> check.Report:
        print("2026-12-07T18:05:31Z [info] setup plugin alembic.autogenerate.schemas")
        sys.stdout.flush()
        os.write(1, b"written at the descriptor\n")
        return check.Report([CheckResult("enabled", None, OK, "fine", None, {})], 0.0)

    monkeypatch.setattr(check, "collect", noisy)
    code = main(["doctor", "check", "--json"])
    captured = capfd.readouterr()
    assert code == 0
    assert json.loads(captured.out)["checks"][0]["summary"] == "fine"
    assert "setup plugin alembic" in captured.err
    assert "written at the descriptor" in captured.err
