"""
The handler mixin's old module path, kept so that logging configs naming it keep working.

``airflow_executor_logs.utils.log.executor_log_reader.ExecutorLogsFileTaskHandler`` (0.1) is the same
class as :class:`airflow_executor_logs.utils.log.task_handler.ExecutorLogsFileTaskHandler`; new configs
use ``LOGGING_CONFIG`` or the new path.
"""

from __future__ import annotations

from airflow_executor_logs.utils.log.task_handler import (
    ExecutorLogReaderMixin,
    ExecutorLogsFileTaskHandler,
    ExecutorLogStandIn,
)

__all__ = ["ExecutorLogReaderMixin", "ExecutorLogStandIn", "ExecutorLogsFileTaskHandler"]
