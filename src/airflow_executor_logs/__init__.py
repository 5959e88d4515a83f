"""Read RUNNING task logs in the Airflow API server without building (and leaking) executors."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so that ``airflow_executor_logs.testing`` and the CLI stay
# light and importing the package never imports Airflow.
_EXPORTS = {
    "CLASS_READER_ATTRIBUTE": "airflow_executor_logs.executors.log_readers",
    "ENTRY_POINT_GROUP": "airflow_executor_logs.executors.log_readers",
    "ReaderRegistration": "airflow_executor_logs.executors.log_readers",
    "ReaderRegistry": "airflow_executor_logs.executors.log_readers",
    "find_reader": "airflow_executor_logs.executors.log_readers",
    "register_reader": "airflow_executor_logs.executors.log_readers",
    "ExecutorResolutionError": "airflow_executor_logs.executors.resolution",
    "ResolvedExecutor": "airflow_executor_logs.executors.resolution",
    "resolve_executor": "airflow_executor_logs.executors.resolution",
    "ExecutorDeadlineExceeded": "airflow_executor_logs.executors.short_lived",
    "call_with_short_lived_executor": "airflow_executor_logs.executors.short_lived",
    "short_lived_executor": "airflow_executor_logs.executors.short_lived",
    "read_running_task_log": "airflow_executor_logs.executors.task_log",
    "ExecutorLogReaderMixin": "airflow_executor_logs.utils.log.executor_log_reader",
    "ExecutorLogsFileTaskHandler": "airflow_executor_logs.utils.log.executor_log_reader",
    "wrap_logging_config": "airflow_executor_logs.logging_config",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return list(__all__)
