"""Helpers that put Airflow's process-wide executor state back to a known place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def reset_executor_caches() -> None:
    """Forget every executor Airflow's loader, the stock handler and this package remember."""
    from airflow.executors import executor_loader
    from airflow.utils.log.file_task_handler import FileTaskHandler

    from airflow_executor_logs import config
    from airflow_executor_logs.executors import kubernetes_reader, resolution, task_log

    executor_loader._executor_names.clear()
    executor_loader._alias_to_executors_per_team.clear()
    executor_loader._module_to_executors_per_team.clear()
    executor_loader._classname_to_executors_per_team.clear()
    executor_loader._team_name_to_executors.clear()
    FileTaskHandler.executor_instances.clear()
    resolution.clear_cache()
    kubernetes_reader.client_cache.clear()
    kubernetes_reader._build_selector.cache_clear()
    config.clear_cache()
    with task_log._warned_lock:
        task_log._warned_classes.clear()


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
