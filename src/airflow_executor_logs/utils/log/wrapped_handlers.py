"""
Importable subclasses of any task handler class with :class:`ExecutorLogReaderMixin` mixed in.

``logging.config.dictConfig`` needs an import path for a handler class. For a handler class at
``a.b.Handler`` this module provides ``airflow_executor_logs.utils.log.wrapped_handlers.a__b__Handler``,
built on first access.
"""

from __future__ import annotations

import functools
import importlib
import threading

from airflow_executor_logs.utils.log.task_handler import (
    ExecutorLogReaderMixin,
    ExecutorLogsFileTaskHandler,
)

__all__ = ["wrap_handler_class", "wrapped_handler_path"]

_SEPARATOR = "__"
_lock = threading.Lock()  # functools.cache alone could build a class twice under a race


def wrapped_handler_path(handler_class_path: str) -> str:
    """The import path of ``handler_class_path`` with the mixin applied."""
    if handler_class_path == "airflow.utils.log.file_task_handler.FileTaskHandler":
        return f"{ExecutorLogsFileTaskHandler.__module__}.{ExecutorLogsFileTaskHandler.__qualname__}"
    parts = handler_class_path.split(".")
    if len(parts) < 2 or any(not part or _SEPARATOR in part for part in parts):
        raise ValueError(f"Cannot wrap task handler class {handler_class_path!r}")
    return f"{__name__}.{_SEPARATOR.join(parts)}"


def wrap_handler_class(handler_class: type) -> type:
    """``handler_class`` with the mixin first in its MRO (itself if it already has it)."""
    if issubclass(handler_class, ExecutorLogReaderMixin):
        return handler_class
    return type(
        f"ExecutorLogs{handler_class.__name__}",
        (ExecutorLogReaderMixin, handler_class),
        {"__module__": __name__, "__doc__": handler_class.__doc__},
    )


@functools.cache
def _wrapped_by_name(name: str) -> type:
    """One class per wrapped path and process, so that every import of the path gives the same class."""
    module_path, _, class_name = name.replace(_SEPARATOR, ".").rpartition(".")
    wrapped = wrap_handler_class(getattr(importlib.import_module(module_path), class_name))
    wrapped.__qualname__ = name
    return wrapped


def __getattr__(name: str) -> type:
    if _SEPARATOR not in name or name.startswith("_"):
        raise AttributeError(name)
    with _lock:
        return _wrapped_by_name(name)
