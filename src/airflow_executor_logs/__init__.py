"""Read RUNNING task logs in the Airflow API server without building (and leaking) executors."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so that ``airflow_executor_logs_testing`` and the CLI stay
# light and importing the package never imports Airflow.
_PROTOCOL = "airflow_executor_logs.executors.reader_protocol"
_REGISTRY = "airflow_executor_logs.executors.reader_registry"
_PIPELINE = "airflow_executor_logs.executors.log_pipeline"
_EXPORTS = {
    "CLASS_READER_ATTRIBUTE": _REGISTRY,
    "ENTRY_POINT_GROUP": _REGISTRY,
    "ReaderRegistry": _REGISTRY,
    "ExecutorLogReader": _PROTOCOL,
    "Notice": _PROTOCOL,
    "ReadContext": _PROTOCOL,
    "ReaderRegistration": _PROTOCOL,
    "StreamingTaskLog": _PROTOCOL,
    "TaskLog": _PROTOCOL,
    "to_task_log": _PROTOCOL,
    "Deadline": "airflow_executor_logs.executors.resilience.deadline",
    "Settings": "airflow_executor_logs.config",
    "ExecutorResolutionError": "airflow_executor_logs.executors.resolution",
    "ResolvedExecutor": "airflow_executor_logs.executors.resolution",
    "ExecutorDeadlineExceeded": "airflow_executor_logs.executors.short_lived",
    "call_with_short_lived_executor": "airflow_executor_logs.executors.short_lived",
    "short_lived_executor": "airflow_executor_logs.executors.short_lived",
    "ExecutorLogPipeline": _PIPELINE,
    "process_pipeline": _PIPELINE,
    "read_running_task_log": _PIPELINE,
    "register_reader": _PIPELINE,
    "use_process_pipeline": _PIPELINE,
    "ExecutorLogReaderMixin": "airflow_executor_logs.utils.log.task_handler",
    "ExecutorLogsFileTaskHandler": "airflow_executor_logs.utils.log.task_handler",
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
