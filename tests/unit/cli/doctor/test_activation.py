"""Whether the package is active: the ``airflow.task`` handler has our mixin and the core calls a hook we know."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.utils.log.file_task_handler import FileTaskHandler

from airflow_executor_logs import version_compat
from airflow_executor_logs.cli.doctor.activation import Activation, check
from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler

OURS = "airflow_executor_logs.utils.log.task_handler.ExecutorLogsFileTaskHandler"
STOCK = "airflow.utils.log.file_task_handler.FileTaskHandler"


@pytest.fixture
def task_handlers() -> Iterator[list[logging.Handler]]:
    """The ``airflow.task`` logger's handlers, restored afterwards."""
    task_logger = logging.getLogger("airflow.task")
    saved = task_logger.handlers[:]
    try:
        yield task_logger.handlers
    finally:
        task_logger.handlers = saved


def test_active_with_our_handler(task_handlers: list[logging.Handler], tmp_path: Path) -> None:
    task_handlers[:] = [ExecutorLogsFileTaskHandler(base_log_folder=str(tmp_path))]
    hook = version_compat.read_hook()
    assert hook is not None
    assert check() == Activation(core=version_compat.core_version(), handler=OURS, wrapped=True, hook=hook)


def test_not_enabled_with_the_stock_handler(task_handlers: list[logging.Handler], tmp_path: Path) -> None:
    task_handlers[:] = [FileTaskHandler(base_log_folder=str(tmp_path))]
    assert check() == Activation(
        core=version_compat.core_version(), handler=STOCK, wrapped=False, hook=version_compat.read_hook()
    )


def test_no_task_handler_at_all(task_handlers: list[logging.Handler]) -> None:
    task_handlers[:] = []
    assert check() == Activation(
        core=version_compat.core_version(), handler=None, wrapped=False, hook=version_compat.read_hook()
    )


def test_airflow_that_cannot_be_imported_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.utils.log.file_task_handler", None)
    activation = check()
    assert (activation.core, activation.handler, activation.wrapped, activation.hook) == (None, None, False, None)
    assert activation.problem == (
        "Airflow cannot be imported: ModuleNotFoundError: "
        "import of airflow.utils.log.file_task_handler halted; None in sys.modules"
    )


def test_descriptions() -> None:
    active = Activation("3.2.1", OURS, True, "_get_executor_get_task_log")
    assert active.active
    assert active.describe() == (
        f"airflow-executor-logs is active: airflow.task logs through {OURS}, hook _get_executor_get_task_log."
    )
    not_enabled = Activation("3.2.1", STOCK, False, "_get_executor_get_task_log")
    assert not not_enabled.active
    assert not_enabled.describe() == (
        f"airflow-executor-logs is not enabled: airflow.task logs through {STOCK} "
        "(set [logging] logging_config_class = airflow_executor_logs.logging_config.LOGGING_CONFIG)."
    )
    inactive = Activation("9.0.0", OURS, True, None)
    assert not inactive.active
    assert inactive.describe() == (
        "airflow-executor-logs is INACTIVE: Airflow core 9.0.0's FileTaskHandler._read calls no hook this "
        "package knows; running tasks' executor logs are read the stock way."
    )
    unknown = Activation(None, None, False, None, "Airflow cannot be imported: ImportError: x")
    assert unknown.describe() == (
        "airflow-executor-logs: cannot tell whether it is active (Airflow cannot be imported: ImportError: x)."
    )


def test_as_dict_adds_whether_it_is_active() -> None:
    assert Activation("3.2.1", OURS, True, "_get_executor").as_dict() == {
        "core": "3.2.1",
        "handler": OURS,
        "wrapped": True,
        "hook": "_get_executor",
        "problem": None,
        "active": True,
    }
