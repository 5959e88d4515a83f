"""The executors check: each configured executor (per team) and each one a running task names, resolved and
planned as the log view's pipeline does it (its resolver and its reader registry, nothing rebuilt here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_executor_logs.cli.doctor.check.results import FAIL, OK, WARN, CheckResult
from airflow_executor_logs.cli.doctor.check.running import RunningTask
from airflow_executor_logs.config import SECTION, Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.problem_answers import reader_failure, unresolved_message
from airflow_executor_logs.executors.reader_registry import ReadPath, class_path
from airflow_executor_logs.executors.resolution import ExecutorResolutionError, ResolvedExecutor

__all__ = ["ExecutorPlan", "check_executors"]


@dataclass(frozen=True)
class ExecutorPlan:
    """One executor as the log view will meet it: resolved (or not) and how its running tasks' logs are read."""

    result: CheckResult
    executor: ResolvedExecutor | None = None
    path: ReadPath | None = None


def check_executors(
    pipeline: ExecutorLogPipeline, settings: Settings, running: Sequence[RunningTask]
) -> list[ExecutorPlan]:
    """A plan per configured executor and team, then per executor a running task names that none covers."""
    from airflow_executor_logs import version_compat

    resolver = pipeline.resolver
    plans: dict[tuple[str, str | None], ExecutorPlan] = {}
    for name in version_compat.load_executor_names():
        requested, team = name.alias or name.module_path, getattr(name, "team_name", None)
        if (requested, team) not in plans:
            plans[(requested, team)] = _plan(
                pipeline, settings, requested, team, lambda r=requested, t=team: resolver.resolve_name(r, t)
            )
    covered = {(p.executor.executor_cls, p.executor.team_name) for p in plans.values() if p.executor is not None}
    named: set[str] = set()
    for task in running:
        requested = getattr(task.ti, "executor", None) or "(default)"
        try:
            executor = resolver.resolve(task.ti, multi_team=settings.multi_team)
        except ExecutorResolutionError:
            executor = None
        if requested in named or (executor is not None and (executor.executor_cls, executor.team_name) in covered):
            continue
        named.add(requested)
        plans[(requested, f"task {task.label}")] = _plan(
            pipeline,
            settings,
            requested,
            None,
            lambda ti=task.ti: resolver.resolve(ti, multi_team=settings.multi_team),
            task=task.label,
        )
    return list(plans.values())


def _plan(
    pipeline: ExecutorLogPipeline,
    settings: Settings,
    requested: str,
    team: str | None,
    resolve: Any,
    task: str | None = None,
) -> ExecutorPlan:
    subject = requested + (f" (team {team})" if team else "") + (f" (named by running task {task})" if task else "")
    try:
        executor: ResolvedExecutor = resolve()
    except ExecutorResolutionError as err:
        fix = (
            "install the package that provides it, or correct its name in [core] executor"
            if isinstance(err.__cause__, ImportError)
            else "add it to [core] executor, or correct the task's executor"
        )
        failed = {"name": requested, "team": team, "task": task, "error": str(err)}
        return ExecutorPlan(CheckResult("executor", subject, FAIL, unresolved_message(err), fix, failed))
    details: dict[str, Any] = {
        "name": requested,
        "team": executor.team_name,
        "class": class_path(executor.executor_cls),
    }
    cls_name = executor.executor_cls.__name__
    try:
        path = pipeline.registry.read_path(executor)
    except Exception as err:
        message = reader_failure(executor.executor_cls, err)
        fix = f"fix or remove the log reader registered for {details['class']}"
        return ExecutorPlan(CheckResult("executor", subject, FAIL, message, fix, details), executor)
    details["read_path"] = path.kind
    if path.reader is not None:
        details["reader"] = path.reader.name
        summary = f"{cls_name}: class-level reader {path.reader.name}"
        return ExecutorPlan(CheckResult("executor", subject, OK, summary, None, details), executor, path)
    if path.kind == ReadPath.NOTHING:
        summary = f"{cls_name}: nothing to build (no get_task_log of its own; logs come from the worker's log server)"
        return ExecutorPlan(CheckResult("executor", subject, OK, summary, None, details), executor, path)
    details["fallback_enabled"] = settings.fallback_enabled
    reason = "it overrides get_task_log and has no class-level reader"
    if settings.fallback_enabled:
        summary = f"{cls_name}: short-lived executor per read ({reason}; [{SECTION}] fallback_enabled = True)"
        fix = f"register a class-level reader for {details['class']} (docs/executor-authors.md) to build nothing"
    else:
        summary = f"{cls_name}: its running tasks' logs show a notice ({reason}; [{SECTION}] fallback_enabled = False)"
        fix = f"set [{SECTION}] fallback_enabled = True, or register a class-level reader for {details['class']}"
    return ExecutorPlan(CheckResult("executor", subject, WARN, summary, fix, details), executor, path)
