"""LOGGING_CONFIG wraps the task handler, and Airflow still finds the remote-logging side channel."""

from __future__ import annotations

import logging
import logging.config
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG
from airflow.utils.log.file_task_handler import FileTaskHandler

from airflow_executor_logs.logging_config import LOGGING_CONFIG, wrap_logging_config
from airflow_executor_logs.utils.log.task_handler import (
    ExecutorLogReaderMixin,
    ExecutorLogsFileTaskHandler,
)
from airflow_executor_logs.utils.log.wrapped_handlers import wrapped_handler_path


@pytest.fixture
def restore_logging() -> Iterator[None]:
    task_logger = logging.getLogger("airflow.task")
    handlers, level, propagate = list(task_logger.handlers), task_logger.level, task_logger.propagate
    root_handlers = list(logging.getLogger().handlers)
    yield
    task_logger.handlers[:] = handlers
    task_logger.setLevel(level)
    task_logger.propagate = propagate
    logging.getLogger().handlers[:] = root_handlers


def test_default_config_is_only_changed_in_the_task_handler() -> None:
    assert LOGGING_CONFIG["handlers"]["task"]["class"] == (
        "airflow_executor_logs.utils.log.task_handler.ExecutorLogsFileTaskHandler"
    )
    unchanged = dict(LOGGING_CONFIG, handlers={k: v for k, v in LOGGING_CONFIG["handlers"].items()})
    unchanged["handlers"]["task"] = DEFAULT_LOGGING_CONFIG["handlers"]["task"]
    assert unchanged == DEFAULT_LOGGING_CONFIG
    assert DEFAULT_LOGGING_CONFIG["handlers"]["task"]["class"].endswith(".FileTaskHandler")  # not mutated


@pytest.mark.usefixtures("restore_logging")
def test_dictconfig_puts_our_handler_on_airflow_task() -> None:
    logging.config.dictConfig(LOGGING_CONFIG)
    handlers = logging.getLogger("airflow.task").handlers
    assert [type(h) for h in handlers] == [ExecutorLogsFileTaskHandler]
    assert isinstance(handlers[0], FileTaskHandler)


class SomeOtherTaskHandler(FileTaskHandler):
    """Stands in for a handler like Elasticsearch's, which subclasses FileTaskHandler."""


@pytest.mark.usefixtures("restore_logging")
def test_any_task_handler_class_is_wrapped() -> None:
    config = dict(DEFAULT_LOGGING_CONFIG)
    config["handlers"] = dict(config["handlers"])
    config["handlers"]["task"] = dict(config["handlers"]["task"], **{"class": f"{__name__}.SomeOtherTaskHandler"})
    wrapped = wrap_logging_config(config)
    assert wrapped["handlers"]["task"]["class"] == wrapped_handler_path(f"{__name__}.SomeOtherTaskHandler")

    logging.config.dictConfig(wrapped)
    (handler,) = logging.getLogger("airflow.task").handlers
    assert isinstance(handler, SomeOtherTaskHandler)
    assert isinstance(handler, ExecutorLogReaderMixin)
    assert type(handler).__mro__[1] is ExecutorLogReaderMixin
    assert wrap_logging_config(wrapped) == wrapped  # wrapping twice changes nothing


def test_a_config_without_task_handler_is_rejected() -> None:
    with pytest.raises(ValueError, match="no 'task' handler"):
        wrap_logging_config({"version": 1, "handlers": {}})


def _in_subprocess(code: str, **env: str) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_airflow_finds_remote_task_log_through_our_module() -> None:
    """Airflow reads REMOTE_TASK_LOG from the config's module; ours must carry Airflow's object."""
    out = _in_subprocess(
        """
        import os
        # Stand in for a remote IO object the stock module builds when remote logging is set up
        # (the S3, GCS... providers are not installed here).
        import airflow.config_templates.airflow_local_settings as stock
        sentinel = object()
        stock.REMOTE_TASK_LOG = sentinel
        stock.DEFAULT_REMOTE_CONN_ID = "my_remote_conn"
        os.environ["AIRFLOW__LOGGING__REMOTE_LOGGING"] = "True"
        # Ours was imported while Airflow started; import it again, as if after the stock module.
        import importlib
        import airflow_executor_logs.logging_config as ours
        importlib.reload(ours)
        import airflow.logging_config as airflow_logging
        load = getattr(airflow_logging, "_load_logging_config", None)  # 3.3
        if load is None:
            airflow_logging.load_logging_config()  # 3.2
        else:
            load()
        active = getattr(airflow_logging, "_ActiveLoggingConfig", None)
        if active is None:  # 3.0 and 3.1 keep them as module globals
            print(airflow_logging.REMOTE_TASK_LOG is sentinel, airflow_logging.DEFAULT_REMOTE_CONN_ID)
        else:
            print(active.remote_task_log is sentinel, active.default_remote_conn_id)
        """,
        AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS="airflow_executor_logs.logging_config.LOGGING_CONFIG",
    )
    assert out.splitlines()[-1] == "True my_remote_conn"


def test_airflow_configures_logging_with_our_handler() -> None:
    out = _in_subprocess(
        """
        import logging
        from airflow.logging_config import configure_logging
        configure_logging()
        print([type(h).__name__ for h in logging.getLogger("airflow.task").handlers])
        """,
        AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS="airflow_executor_logs.logging_config.LOGGING_CONFIG",
    )
    assert out.splitlines()[-1] == "['ExecutorLogsFileTaskHandler']"
