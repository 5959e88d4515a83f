"""Short network bounds for ``doctor check`` tests, and ``airflow.task`` logging through our handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_executor_logs.config import Settings

#: ``connect_timeout`` and ``read_timeout`` of these tests (s).
CONNECT, READ = 0.5, 1.5


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``[executor_logs]`` with :data:`CONNECT` and :data:`READ`, set in the environment as a deployment would."""
    monkeypatch.setenv("AIRFLOW__EXECUTOR_LOGS__CONNECT_TIMEOUT", str(CONNECT))
    monkeypatch.setenv("AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT", str(READ))
    return Settings.from_conf()


@pytest.fixture
def our_task_handler(tmp_path: Path) -> Iterator[None]:
    """``airflow.task`` logs through our handler, as in a process Airflow configured with our logging config."""
    from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler

    task_logger = logging.getLogger("airflow.task")
    saved = task_logger.handlers[:]
    task_logger.handlers = [ExecutorLogsFileTaskHandler(base_log_folder=str(tmp_path))]
    try:
        yield
    finally:
        task_logger.handlers = saved
