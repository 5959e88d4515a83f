"""Importable wrapped handler classes: ``a.b.Handler`` -> ``wrapped_handlers.a__b__Handler``, built once."""

from __future__ import annotations

import importlib
import logging
import logging.handlers
import threading
import time

import pytest
from airflow.utils.log.file_task_handler import FileTaskHandler

from airflow_executor_logs.utils.log import wrapped_handlers
from airflow_executor_logs.utils.log.task_handler import ExecutorLogReaderMixin, ExecutorLogsFileTaskHandler
from airflow_executor_logs.utils.log.wrapped_handlers import wrap_handler_class, wrapped_handler_path

MODULE = "airflow_executor_logs.utils.log.wrapped_handlers"


class OtherTaskHandler(FileTaskHandler):
    """A task handler of someone else's, like Elasticsearch's."""


OTHER = f"{__name__}.OtherTaskHandler"
OTHER_WRAPPED = OTHER.replace(".", "__")


def test_the_stock_handler_maps_to_ours() -> None:
    assert wrapped_handler_path("airflow.utils.log.file_task_handler.FileTaskHandler") == (
        "airflow_executor_logs.utils.log.task_handler.ExecutorLogsFileTaskHandler"
    )


def test_any_other_handler_maps_to_a_name_in_this_module() -> None:
    assert wrapped_handler_path("a.b.Handler") == f"{MODULE}.a__b__Handler"
    assert wrapped_handler_path(OTHER) == f"{MODULE}.{OTHER_WRAPPED}"


@pytest.mark.parametrize("path", ["Handler", "a..Handler", "a.b__c.Handler", ".a.Handler", "a.Handler."])
def test_paths_that_cannot_be_wrapped(path: str) -> None:
    with pytest.raises(ValueError, match="Cannot wrap task handler class"):
        wrapped_handler_path(path)


def test_wrapping_puts_the_mixin_first() -> None:
    wrapped = wrap_handler_class(OtherTaskHandler)
    assert wrapped.__mro__[1:3] == (ExecutorLogReaderMixin, OtherTaskHandler)
    assert (wrapped.__name__, wrapped.__module__, wrapped.__doc__) == (
        "ExecutorLogsOtherTaskHandler",
        MODULE,
        OtherTaskHandler.__doc__,
    )


def test_a_class_with_the_mixin_is_not_wrapped_again() -> None:
    assert wrap_handler_class(ExecutorLogsFileTaskHandler) is ExecutorLogsFileTaskHandler
    wrapped = wrap_handler_class(OtherTaskHandler)
    assert wrap_handler_class(wrapped) is wrapped


def test_the_path_imports_one_class_per_process() -> None:
    module_path, _, name = wrapped_handler_path(OTHER).rpartition(".")
    first = getattr(importlib.import_module(module_path), name)
    assert issubclass(first, OtherTaskHandler)
    assert issubclass(first, ExecutorLogReaderMixin)
    assert first.__qualname__ == OTHER_WRAPPED
    assert getattr(wrapped_handlers, name) is first


def test_concurrent_first_imports_build_one_class(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "logging__handlers__MemoryHandler"  # not built by any other test
    built: list[type] = []

    def slow_wrap(handler_class: type) -> type:
        built.append(handler_class)
        time.sleep(0.05)  # widens the window in which a second first import could build it too
        return wrap_handler_class(handler_class)

    monkeypatch.setattr(wrapped_handlers, "wrap_handler_class", slow_wrap)
    barrier = threading.Barrier(4)
    seen: list[type] = []

    def first_import() -> None:
        barrier.wait(5)
        seen.append(getattr(wrapped_handlers, name))

    threads = [threading.Thread(target=first_import) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert built == [logging.handlers.MemoryHandler]
    assert len(seen) == 4
    assert len({id(cls) for cls in seen}) == 1


@pytest.mark.parametrize("name", ["Handler", "_private__name", "__wrapped__"])
def test_other_names_are_not_attributes(name: str) -> None:
    with pytest.raises(AttributeError):
        getattr(wrapped_handlers, name)
