"""A task-handler mixin that reads RUNNING task logs without keeping an executor per process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.utils.log.file_task_handler import FileTaskHandler

from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline, process_pipeline
from airflow_executor_logs.executors.reader_protocol import TaskLog


class ExecutorLogReaderMixin:
    """
    Replace ``FileTaskHandler._get_executor_get_task_log``.

    Upstream builds the task's executor, caches it for the life of the process and never ends
    it. This reads through an :class:`ExecutorLogPipeline`, which resolves only the executor class.
    """

    #: The pipeline this handler reads through; ``None`` means the one per process (:func:`process_pipeline`).
    executor_log_pipeline: ExecutorLogPipeline | None = None

    @property
    def pipeline(self) -> ExecutorLogPipeline:
        return self.executor_log_pipeline or process_pipeline()

    def _get_executor_get_task_log(self, ti: Any) -> Callable[[Any, int], TaskLog]:
        return self.pipeline.read


class ExecutorLogsFileTaskHandler(ExecutorLogReaderMixin, FileTaskHandler):
    """``FileTaskHandler`` that reads running-task executor logs without building executors."""
