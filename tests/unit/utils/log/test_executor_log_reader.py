"""The mixin's old module path still names the same classes, so logging configs naming it keep working."""

from __future__ import annotations

import logging.config

from airflow_executor_logs.utils.log import executor_log_reader, task_handler

OLD_PATH = "airflow_executor_logs.utils.log.executor_log_reader.ExecutorLogsFileTaskHandler"


def test_the_old_path_names_the_same_classes() -> None:
    for name in executor_log_reader.__all__:
        assert getattr(executor_log_reader, name) is getattr(task_handler, name)


def test_logging_config_resolves_the_old_path_to_our_handler() -> None:
    """``dictConfig`` imports a handler's ``class`` with this resolver."""
    resolved = logging.config.BaseConfigurator({}).resolve(OLD_PATH)
    assert resolved is task_handler.ExecutorLogsFileTaskHandler
