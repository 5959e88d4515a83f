"""
Airflow's default logging config, with the task handler reading executor logs class-level.

Enable with ``AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS=airflow_executor_logs.logging_config.LOGGING_CONFIG``.
``REMOTE_TASK_LOG`` and ``DEFAULT_REMOTE_CONN_ID`` are re-exported because Airflow reads them from the
module the config comes from; without them remote logging would silently switch off.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow.config_templates.airflow_local_settings import (
    DEFAULT_LOGGING_CONFIG,
    DEFAULT_REMOTE_CONN_ID,
    REMOTE_TASK_LOG,
)

from airflow_executor_logs.utils.log.wrapped_handlers import wrapped_handler_path

__all__ = ["DEFAULT_REMOTE_CONN_ID", "LOGGING_CONFIG", "REMOTE_TASK_LOG", "wrap_logging_config"]

TASK_HANDLER = "task"


def wrap_logging_config(logging_config: dict[str, Any], handler_name: str = TASK_HANDLER) -> dict[str, Any]:
    """A copy of ``logging_config`` whose ``handler_name`` handler gets the executor-log mixin."""
    wrapped = copy.deepcopy(logging_config)
    handler = wrapped.get("handlers", {}).get(handler_name)
    if handler is None:
        raise ValueError(f"Logging config has no {handler_name!r} handler to wrap")
    if "class" not in handler:
        raise ValueError(f"Handler {handler_name!r} names no 'class'; wrap its class yourself")
    handler_class = handler["class"]
    if not isinstance(handler_class, str):
        handler_class = f"{handler_class.__module__}.{handler_class.__qualname__}"
    if not handler_class.startswith("airflow_executor_logs."):
        handler["class"] = wrapped_handler_path(handler_class)
    return wrapped


LOGGING_CONFIG: dict[str, Any] = wrap_logging_config(DEFAULT_LOGGING_CONFIG)
