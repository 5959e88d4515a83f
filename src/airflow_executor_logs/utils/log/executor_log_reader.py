"""A task-handler mixin that reads RUNNING task logs without keeping an executor per process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.utils.log.file_task_handler import FileTaskHandler

from airflow_executor_logs.executors.log_readers import TaskLog
from airflow_executor_logs.executors.task_log import read_running_task_log


class ExecutorLogReaderMixin:
    """
    Replace ``FileTaskHandler._get_executor_get_task_log``.

    Upstream builds the task's executor, caches it for the life of the process and never ends
    it. This resolves only the executor class; see :func:`read_running_task_log`.
    """

    def _get_executor_get_task_log(self, ti: Any) -> Callable[[Any, int], TaskLog]:
        return read_running_task_log


class ExecutorLogsFileTaskHandler(ExecutorLogReaderMixin, FileTaskHandler):
    """``FileTaskHandler`` that reads running-task executor logs without building executors."""
