"""Read RUNNING task logs in the Airflow API server without building (and leaking) executors."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The public surface, imported on first use so that ``airflow_executor_logs_testing`` and the CLI stay
# light and importing the package never imports Airflow. Executor authors and operators use these names
# (docs/executor-authors.md names no other, tests/unit/test_airflow_executor_logs.py checks it); with
# ``airflow_executor_logs.logging_config`` and the CLI they are the whole public surface. Every other
# module is the package's own and may change in any release.
_PROTOCOL = "airflow_executor_logs.executors.reader_protocol"
_REGISTRY = "airflow_executor_logs.executors.reader_registry"
_PIPELINE = "airflow_executor_logs.executors.log_pipeline"
_KUBE_CLIENT = "airflow_executor_logs.executors.kubernetes.client"
_METRICS = "airflow_executor_logs.metrics"
_EXPORTS = {
    # writing a reader (docs/executor-authors.md)
    "CLASS_READER_ATTRIBUTE": _REGISTRY,
    "ENTRY_POINT_GROUP": _REGISTRY,
    "ReaderRegistry": _REGISTRY,
    "ExecutorLogReader": _PROTOCOL,
    "Notice": _PROTOCOL,
    "Outcome": _PROTOCOL,
    "ReadContext": _PROTOCOL,
    "ReaderRegistration": _PROTOCOL,
    "StreamingTaskLog": _PROTOCOL,
    "TaskLog": _PROTOCOL,
    "to_task_log": _PROTOCOL,
    "Deadline": "airflow_executor_logs.executors.resilience.deadline",
    "ReadDeadlineExceeded": "airflow_executor_logs.executors.resilience.deadline",
    "Settings": "airflow_executor_logs.config",
    "MetricsSink": _METRICS,
    "RecordingMetrics": _METRICS,
    "ResolvedExecutor": "airflow_executor_logs.executors.resolution",
    # testing a reader: the pipeline, and the Kubernetes client contract the kit's double implements
    "ExecutorLogPipeline": _PIPELINE,
    "process_pipeline": _PIPELINE,
    "read_running_task_log": _PIPELINE,
    "register_reader": _PIPELINE,
    "use_process_pipeline": _PIPELINE,
    "KubeClientCache": _KUBE_CLIENT,
    "KubeCoreApi": _KUBE_CLIENT,
    "PodList": _KUBE_CLIENT,
    "PodLogResponse": _KUBE_CLIENT,
    # operators: the task handler, for a logging config of their own
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
