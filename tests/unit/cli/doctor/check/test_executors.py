"""The executor check: each configured executor (per team) planned as the log view's pipeline plans it."""

from __future__ import annotations

from unittest import mock

import airflow_executor_logs_testing.executors as fx
from airflow_executor_logs.cli.doctor.check.executors import check_executors
from airflow_executor_logs.cli.doctor.check.running import RunningTask
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from tests.support.airflow_state import executors_configured
from tests.support.task_instances import fake_ti
from tests.unit.executors.test_resolution import needs_teams


def _results(settings: Settings, running: list[RunningTask] | None = None) -> list[tuple[str | None, str, str, str]]:
    plans = check_executors(ExecutorLogPipeline(settings=settings), settings, running or [])
    return [(p.result.subject, p.result.status, p.result.summary, p.result.fix or "") for p in plans]


def test_each_way_a_running_task_is_read(settings: Settings) -> None:
    with executors_configured(f"KubernetesExecutor,LocalExecutor,{fx.path(fx.CountingExecutor)}"):
        kubernetes, local, counting = _results(settings)
    assert kubernetes[:3] == ("KubernetesExecutor", "ok", "KubernetesExecutor: class-level reader KubernetesLogReader")
    assert local[1] == "ok"
    assert "LocalExecutor: nothing to build" in local[2]
    assert counting[1] == "warn"
    assert counting[2] == (
        "CountingExecutor: short-lived executor per read (it overrides get_task_log and has no class-level reader; "
        "[executor_logs] fallback_enabled = True)"
    )
    assert "register a class-level reader" in counting[3]


def test_short_lived_with_the_fallback_off(settings: Settings) -> None:
    off = Settings(**{**settings.__dict__, "fallback_enabled": False})
    with executors_configured(fx.path(fx.CountingExecutor)):
        [(_, status, summary, fix)] = _results(off)
    assert status == "warn"
    assert "show a notice" in summary
    assert fix.startswith("set [executor_logs] fallback_enabled = True")


def test_an_executor_that_cannot_be_imported_fails_with_the_log_views_message(settings: Settings) -> None:
    with executors_configured("KubernetesExecutor,NoSuchExecutor"):
        [_, (subject, status, summary, fix)] = _results(settings)
    assert (subject, status) == ("NoSuchExecutor", "fail")
    assert summary.startswith("Executor logs unavailable: Cannot import executor 'NoSuchExecutor'")
    assert fix == "install the package that provides it, or correct its name in [core] executor"


def test_an_unknown_executor_a_running_task_names(settings: Settings) -> None:
    ghost = RunningTask(fake_ti("GhostExecutor"), None, None)
    known = RunningTask(fake_ti("KubernetesExecutor"), None, None)
    with executors_configured("KubernetesExecutor"):
        results = _results(settings, [ghost, known, ghost])
    assert len(results) == 2  # the configured one, and the unknown one once
    subject, status, summary, fix = results[1]
    assert subject == f"GhostExecutor (named by running task {ghost.label})"
    assert status == "fail"
    assert summary.startswith("Executor logs unavailable: Cannot find executor 'GhostExecutor' in [core] executor = ")
    assert fix == "add it to [core] executor, or correct the task's executor"


def test_a_reader_factory_that_raises(settings: Settings) -> None:
    pipeline = ExecutorLogPipeline(settings=settings)
    with (
        executors_configured("KubernetesExecutor"),
        mock.patch.object(pipeline.registry, "find", side_effect=RuntimeError("no client library")),
    ):
        [plan] = check_executors(pipeline, settings, [])
    assert plan.result.status == "fail"
    assert plan.result.summary.endswith("failed to read logs: RuntimeError: no client library")


@needs_teams
def test_team_executors_are_checked_per_team(settings: Settings) -> None:
    setting = f"KubernetesExecutor;team_a={fx.path(fx.CountingExecutor)}"
    with executors_configured(setting, multi_team="True"):
        multi = Settings(**{**settings.__dict__, "multi_team": True})
        results = _results(multi)
    assert [(subject, status) for subject, status, _, _ in results] == [
        ("KubernetesExecutor", "ok"),
        (f"{fx.path(fx.CountingExecutor)} (team team_a)", "warn"),
    ]
