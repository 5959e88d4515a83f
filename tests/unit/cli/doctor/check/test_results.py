"""``doctor check``'s report: the lines, the exit codes, and the ``--json`` document against its schema."""

from __future__ import annotations

import io
import json

import jsonschema
import pytest

from airflow_executor_logs.cli import main
from airflow_executor_logs.cli.doctor.check.results import (
    FAIL,
    OK,
    SCHEMA,
    WARN,
    CheckResult,
    document,
    exit_code,
    print_text,
)

RESULTS = [
    CheckResult("enabled", None, OK, "wraps FileTaskHandler"),
    CheckResult("executor", "NomadExecutor", WARN, "short-lived executor per read", "register a reader"),
    CheckResult("kubernetes", "team a", FAIL, "may not list pods in namespace b", "add a Role", {"denied": []}),
]


def test_one_line_per_check_and_a_fix_under_each_problem() -> None:
    out = io.StringIO()
    print_text(RESULTS, out)
    assert out.getvalue().splitlines() == [
        "ok    enabled: wraps FileTaskHandler",
        "warn  executor NomadExecutor: short-lived executor per read",
        "      fix: register a reader",
        "fail  kubernetes team a: may not list pods in namespace b",
        "      fix: add a Role",
        "1 ok, 1 warn, 1 fail.",
    ]


def test_exit_codes() -> None:
    assert exit_code(RESULTS[:2]) == 0  # a warning is not a failure
    assert exit_code(RESULTS) == 1
    with pytest.raises(ValueError, match="status"):
        CheckResult("enabled", None, "bad", "")


def test_the_json_document_follows_its_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    doc = json.loads(json.dumps(document(RESULTS, 1.25)))
    jsonschema.validate(doc, SCHEMA)
    assert doc["counts"] == {"ok": 1, "warn": 1, "fail": 1}
    assert doc["exit_code"] == 1
    assert doc["checks"][2] == {
        "check": "kubernetes",
        "subject": "team a",
        "status": "fail",
        "summary": "may not list pods in namespace b",
        "fix": "add a Role",
        "details": {"denied": []},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "checks": [{**doc["checks"][0], "status": "maybe"}]}, SCHEMA)


def test_could_not_run_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT", "not a number")
    assert main(["doctor", "check"]) == 2
    assert "doctor check could not run" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    assert main(["doctor", "check", "--no-such-option"]) == 2
