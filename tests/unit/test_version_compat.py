"""
What differs between core lines, tested on whichever core this cell installs: the hook ``_read`` calls
is overridden, an unknown core is reported, tailing works, and old loader signatures are handled.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_executor_logs import version_compat
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.resolution import ExecutorResolutionError, ExecutorResolver
from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler, ExecutorLogStandIn
from airflow_executor_logs.utils.log.wrapped_handlers import wrap_handler_class
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.task_instances import fake_ti

LOG_LINES = ["2026-01-01T00:00:01Z from the file 1", "2026-01-01T00:00:02Z from the file 2"]


@pytest.fixture(autouse=True)
def _fakes() -> Iterator[None]:
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield


@pytest.fixture
def pipeline() -> ExecutorLogPipeline:
    pipeline = ExecutorLogPipeline(settings=Settings(read_timeout=5))
    pipeline.register(fx.ManagerExecutor, lambda cls, ti, try_number: (["read class-level"], ["pod line"]))
    return pipeline


def _handler(handler_class: type, tmp_path: Path, pipeline: ExecutorLogPipeline) -> Any:
    (tmp_path / "task.log").write_text("\n".join(LOG_LINES) + "\n")
    handler = handler_class(base_log_folder=str(tmp_path))
    handler.executor_log_pipeline = pipeline
    handler._render_filename = lambda ti, try_number, **kwargs: "task.log"
    return handler


def _events(stream: Any) -> list[str]:
    return [str(getattr(message, "event", message)) for message in stream]


def test_this_core_calls_a_hook_we_override() -> None:
    hook = version_compat.read_hook()
    assert hook in (version_compat.HOOK_GET_TASK_LOG, version_compat.HOOK_GET_EXECUTOR)
    assert hook in vars(ExecutorLogsFileTaskHandler.__mro__[1])  # defined by the mixin


def test_reading_a_running_task_goes_through_the_pipeline(tmp_path: Path, pipeline: ExecutorLogPipeline) -> None:
    handler = _handler(ExecutorLogsFileTaskHandler, tmp_path, pipeline)
    with mock.patch.object(fx.ManagerExecutor, "__init__", side_effect=AssertionError("executor built")):
        stream, _ = handler._read(fake_ti("ManagerExecutor"), 1)
        events = _events(stream)
    assert "pod line" in events  # only the pipeline's reader answers that


def test_without_our_override_this_core_builds_the_executor(tmp_path: Path, pipeline: ExecutorLogPipeline) -> None:
    """The control: the same read with the core's own hook builds the executor (so the test above can fail)."""
    from airflow.utils.log.file_task_handler import FileTaskHandler

    hook = version_compat.read_hook()
    assert hook is not None
    stock_hook = type("StockHookHandler", (ExecutorLogsFileTaskHandler,), {hook: getattr(FileTaskHandler, hook)})
    handler = _handler(stock_hook, tmp_path, pipeline)
    FileTaskHandler.executor_instances.clear()
    with (
        mock.patch.object(fx.ManagerExecutor, "__init__", side_effect=AssertionError("executor built")),
        pytest.raises(AssertionError, match="executor built"),
    ):
        handler._read(fake_ti("ManagerExecutor"), 1)


def test_an_unknown_core_is_reported_and_left_stock(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from airflow.utils.log.file_task_handler import FileTaskHandler

    def read_without_hooks(self: Any, ti: Any, try_number: int, metadata: Any = None) -> Any:
        return iter(["stock read"]), {"end_of_log": True}

    no_hooks = type(
        "NoHooksTaskHandler",
        (FileTaskHandler,),
        {"_read": read_without_hooks, "_get_executor_get_task_log": None, "_get_executor": None},
    )
    wrapped = wrap_handler_class(no_hooks)
    with caplog.at_level(logging.ERROR):
        handler = wrapped(base_log_folder=str(tmp_path))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"Airflow core {version_compat.core_version()}" in errors[0]
    assert "read the stock way" in errors[0]
    assert list(handler._read(fake_ti("ManagerExecutor"), 1)[0]) == ["stock read"]  # untouched

    from airflow_executor_logs.cli.doctor import run
    from airflow_executor_logs.cli.doctor.options import EXIT_INACTIVE

    out = _doctor_with_task_handler(handler, run)
    assert out[0] == EXIT_INACTIVE
    assert "INACTIVE" in out[1]
    assert version_compat.core_version() in out[1]


def _doctor_with_task_handler(handler: Any, run: Any) -> tuple[int, str]:
    import argparse
    import io

    task_logger = logging.getLogger("airflow.task")
    saved = task_logger.handlers[:]
    task_logger.handlers = [handler]
    try:
        out = io.StringIO()
        code = run(argparse.Namespace(tmpdir=str(Path("/nonexistent-ael-doctor")), all=False, reap=False), out)
        return code, out.getvalue()
    finally:
        task_logger.handlers = saved


def test_the_doctor_says_which_handler_and_hook_are_active(tmp_path: Path, pipeline: ExecutorLogPipeline) -> None:
    from airflow_executor_logs.cli.doctor import run
    from airflow_executor_logs.cli.doctor.options import EXIT_OK

    code, text = _doctor_with_task_handler(_handler(ExecutorLogsFileTaskHandler, tmp_path, pipeline), run)
    assert code == EXIT_OK
    handler = "airflow_executor_logs.utils.log.task_handler.ExecutorLogsFileTaskHandler"
    expected = (
        f"airflow-executor-logs is active: airflow.task logs through {handler}, hook {version_compat.read_hook()}"
    )
    assert expected in text


def test_tailing_a_running_task_answers_only_the_new_lines(tmp_path: Path, pipeline: ExecutorLogPipeline) -> None:
    """A continuation read, as the UI makes it; a 500 (TypeError) on stock 3.2.0 to 3.3.0 (upstream #69503)."""
    handler = _handler(ExecutorLogsFileTaskHandler, tmp_path, pipeline)
    ti = fake_ti("ManagerExecutor")
    first, metadata = handler.read(ti, 1, metadata={})
    first_events = _events(first)
    assert "pod line" in first_events
    assert metadata["log_pos"] == 3  # the pod line and the two file lines were sent
    (tmp_path / "task.log").write_text("\n".join([*LOG_LINES, "2026-01-01T00:00:03Z from the file 3"]) + "\n")
    more, _ = handler.read(ti, 1, metadata=dict(metadata))
    assert _events(more) == ["2026-01-01T00:00:03Z from the file 3"]


def test_the_34_stand_in_answers_both_calls_through_the_pipeline(pipeline: ExecutorLogPipeline) -> None:
    handler = ExecutorLogsFileTaskHandler(base_log_folder="/tmp")
    handler.executor_log_pipeline = pipeline
    stand_in = handler._get_executor(fake_ti("ManagerExecutor"))
    assert isinstance(stand_in, ExecutorLogStandIn)
    messages, streams = stand_in.get_streaming_task_log(fake_ti("ManagerExecutor"), 1)
    assert (messages, [list(stream) for stream in streams]) == (["read class-level"], [["pod line"]])
    assert stand_in.get_task_log(fake_ti("ManagerExecutor"), 1) == (["read class-level"], ["pod line"])


@pytest.mark.parametrize(
    ("on_ti", "expected"),
    [
        (None, "ManagerExecutor"),  # the default executor (first configured)
        ("fast", "CountingExecutor"),  # an alias
        (fx.path(fx.ManagerExecutor), "ManagerExecutor"),  # a module path
        ("CountingExecutor", "CountingExecutor"),  # a class name
    ],
)
def test_names_resolve_on_this_cores_loader(on_ti: str | None, expected: str) -> None:
    setting = f"{fx.path(fx.ManagerExecutor)},fast:{fx.path(fx.CountingExecutor)}"
    with conf_vars({("core", "executor"): setting}):
        resolved = ExecutorResolver().resolve(fake_ti(on_ti), multi_team=False)
    assert resolved.executor_cls.__name__ == expected


def test_an_unknown_name_is_a_clear_message_on_this_cores_loader() -> None:
    with pytest.raises(ExecutorResolutionError, match="Cannot find executor 'NoSuchExecutor'"):
        ExecutorResolver().resolve(fake_ti("NoSuchExecutor"), multi_team=False)


def test_remote_task_log_asks_core_3_0s_module_for_neither_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Core 3.0/3.1's ``airflow.logging_config`` answers ``None`` for any unknown name through a module
    ``__getattr__`` (so ``from ... import get_remote_task_log`` gives ``None``, not an ImportError) and reloads the
    logging config for ``REMOTE_TASK_LOG``: the attribute set by configuring logging is read as it is."""
    import types

    import airflow

    loads: list[str] = []
    old_core = types.ModuleType("airflow.logging_config")

    def module_getattr(name: str) -> None:
        loads.append(name)
        return None

    old_core.__getattr__ = module_getattr  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "airflow.logging_config", old_core)
    monkeypatch.setattr(airflow, "logging_config", old_core, raising=False)
    assert version_compat.remote_task_log() is None
    store = object()
    old_core.REMOTE_TASK_LOG = store  # type: ignore[attr-defined]
    assert version_compat.remote_task_log() is store
    assert loads == []

    new_core = types.ModuleType("airflow.logging_config")
    new_core.get_remote_task_log = lambda: store  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.logging_config", new_core)
    monkeypatch.setattr(airflow, "logging_config", new_core)
    assert version_compat.remote_task_log() is store
