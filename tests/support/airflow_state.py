"""Helpers that put Airflow's process-wide executor state back to a known place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def reset_executor_caches() -> None:
    """
    Forget every executor Airflow's loader and the stock handler remember; start a fresh pipeline.

    The fresh process pipeline holds the test process's one helper (``tests.support.processes.HELPER``), as
    a worker's pipeline holds its one: a reset does not cost the next short-lived read a cold helper start.
    """
    from airflow.executors import executor_loader
    from airflow.utils.log.file_task_handler import FileTaskHandler

    from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline, use_process_pipeline
    from tests.support.processes import HELPER

    for name in (
        "_executor_names",
        "_alias_to_executors_per_team",
        "_module_to_executors_per_team",
        "_classname_to_executors_per_team",
        "_team_name_to_executors",
        "_alias_to_executors",
        "_module_to_executors",
        "_classname_to_executors",
    ):
        cache = getattr(executor_loader, name, None)
        if cache is not None:
            cache.clear()
    FileTaskHandler.executor_instances.clear()
    use_process_pipeline(ExecutorLogPipeline(helper=HELPER))


@contextlib.contextmanager
def conf_vars(overrides: dict[tuple[str, str], str | None]) -> Iterator[None]:
    """Temporarily set (or with ``None`` unset) Airflow options through their environment variables."""
    saved: dict[str, str | None] = {}
    for (section, key), value in overrides.items():
        name = f"AIRFLOW__{section.upper()}__{key.upper()}"
        saved[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_executor_caches()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_executor_caches()


@contextlib.contextmanager
def executors_configured(executor_setting: str, **more: str) -> Iterator[None]:
    """Configure ``[core] executor`` (and other ``[core]`` keys) for the block."""
    overrides: dict[tuple[str, str], str | None] = {("core", "executor"): executor_setting}
    overrides.update({("core", key): value for key, value in more.items()})
    with conf_vars(overrides):
        yield
