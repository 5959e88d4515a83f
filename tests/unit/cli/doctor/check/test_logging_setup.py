"""The logging checks: our reader is enabled by ``logging_config_class``, and remote logging is kept."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_executor_logs.cli.doctor.check.logging_setup import OUR_CONFIG, check_enabled, check_remote_logging

_NAMES = itertools.count()
WRAPPED = """
from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG
from airflow_executor_logs.logging_config import wrap_logging_config
LOGGING_CONFIG = wrap_logging_config(DEFAULT_LOGGING_CONFIG)
"""


@pytest.fixture
def config_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """``config_module(source)`` writes a module of ``source``, points logging_config_class at its LOGGING_CONFIG."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"doctor_check_logging_{next(_NAMES)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", f"{name}.LOGGING_CONFIG")
        return name

    return write


def test_ours_is_enabled(monkeypatch: pytest.MonkeyPatch, our_task_handler: None) -> None:
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", OUR_CONFIG)
    result = check_enabled()
    assert result.status == "ok", result
    assert result.summary.startswith(f"{OUR_CONFIG} wraps FileTaskHandler (airflow.utils.log.file_task_handler.")
    assert result.details["hook"] in ("_get_executor_get_task_log", "_get_executor")


def test_configured_but_not_what_this_process_logs_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import logging

    from airflow.utils.log.file_task_handler import FileTaskHandler

    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", OUR_CONFIG)
    monkeypatch.setattr(logging.getLogger("airflow.task"), "handlers", [FileTaskHandler(base_log_folder=str(tmp_path))])
    result = check_enabled()
    assert result.status == "warn"
    assert "but in this process airflow-executor-logs is not enabled: airflow.task logs through" in result.summary
    assert result.details["activation"]["active"] is False


def test_not_set_fails_with_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", "")
    result = check_enabled()
    assert result.status == "fail"
    assert result.fix == f"set [logging] logging_config_class = {OUR_CONFIG}"


def test_airflows_own_config_fails_with_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    stock = "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", stock)
    result = check_enabled()
    assert result.status == "fail"
    assert (
        "task handler airflow.utils.log.file_task_handler.FileTaskHandler has no executor-log reader" in result.summary
    )
    assert result.fix == f"set [logging] logging_config_class = {OUR_CONFIG}"


def test_a_users_unwrapped_config_fails_with_how_to_wrap_it(config_module: Callable[[str], str]) -> None:
    name = config_module(
        "from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG as LOGGING_CONFIG\n"
    )
    result = check_enabled()
    assert result.status == "fail"
    assert result.fix is not None
    assert result.fix.startswith(f"in {name}, wrap the config: LOGGING_CONFIG = wrap_logging_config(...)")


def test_a_config_that_does_not_import_fails(config_module: Callable[[str], str]) -> None:
    config_module("raise ImportError('the company package is not installed')\n")
    result = check_enabled()
    assert result.status == "fail"
    assert "cannot be loaded: ImportError: the company package is not installed" in result.summary


def test_a_users_wrapped_config_names_the_handler_it_wraps(
    config_module: Callable[[str], str], our_task_handler: None
) -> None:
    config_module(WRAPPED)
    result = check_enabled()
    assert result.status == "ok", result
    assert result.details["wraps"] == "airflow.utils.log.file_task_handler.FileTaskHandler"
    assert result.details["handler"].startswith("airflow_executor_logs.")


def test_remote_logging_off_is_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", "False")
    assert check_remote_logging().status == "ok"


def test_remote_logging_on_with_a_config_that_lost_remote_task_log(
    config_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", "True")
    name = config_module(WRAPPED)
    result = check_remote_logging()
    assert result.status == "fail"
    assert result.summary.startswith(f"[logging] remote_logging is on, but {name} has no REMOTE_TASK_LOG")
    assert result.fix == (
        f"in {name}: from airflow_executor_logs.logging_config import DEFAULT_REMOTE_CONN_ID, REMOTE_TASK_LOG"
    )


def test_remote_logging_kept(config_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", "True")
    name = config_module(WRAPPED + "class S3RemoteLogIO:\n    pass\nREMOTE_TASK_LOG = S3RemoteLogIO()\n")
    result = check_remote_logging()
    assert (result.status, result.summary) == ("ok", f"{name}.REMOTE_TASK_LOG is set (S3RemoteLogIO)")


def test_remote_task_log_of_another_kind_warns(
    config_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.config_templates import airflow_local_settings

    class GCSRemoteLogIO:
        pass

    monkeypatch.setattr(airflow_local_settings, "REMOTE_TASK_LOG", GCSRemoteLogIO(), raising=False)
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", "True")
    config_module(WRAPPED + "class S3RemoteLogIO:\n    pass\nREMOTE_TASK_LOG = S3RemoteLogIO()\n")
    result = check_remote_logging()
    assert result.status == "warn"
    assert "configures GCSRemoteLogIO" in result.summary
