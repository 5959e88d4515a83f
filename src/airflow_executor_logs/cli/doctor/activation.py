"""Whether airflow-executor-logs reads executor logs in this environment: the task handler, and the core's hook."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Activation", "check"]


@dataclass(frozen=True)
class Activation:
    """What ``airflow.task`` logs through, and which hook the installed core's ``_read`` calls."""

    core: str | None
    #: ``module.Class`` of the ``airflow.task`` logger's first handler.
    handler: str | None
    #: Whether that handler class has this package's mixin.
    wrapped: bool
    #: The hook the core's ``FileTaskHandler._read`` calls, if this package knows it.
    hook: str | None
    problem: str | None = None

    @property
    def active(self) -> bool:
        return self.wrapped and self.hook is not None

    def describe(self) -> str:
        if self.problem:
            return f"airflow-executor-logs: cannot tell whether it is active ({self.problem})."
        if self.hook is None:
            return (
                f"airflow-executor-logs is INACTIVE: Airflow core {self.core}'s FileTaskHandler._read calls no "
                "hook this package knows; running tasks' executor logs are read the stock way."
            )
        if not self.wrapped:
            return (
                f"airflow-executor-logs is not enabled: airflow.task logs through {self.handler} "
                "(set [logging] logging_config_class = airflow_executor_logs.logging_config.LOGGING_CONFIG)."
            )
        return f"airflow-executor-logs is active: airflow.task logs through {self.handler}, hook {self.hook}."

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


def check() -> Activation:
    """Import Airflow (which configures its logging) and look at the task handler and the core."""
    try:
        from airflow.utils.log.file_task_handler import FileTaskHandler

        from airflow_executor_logs import version_compat
        from airflow_executor_logs.utils.log.task_handler import ExecutorLogReaderMixin
    except Exception as err:
        return Activation(None, None, False, None, f"Airflow cannot be imported: {type(err).__name__}: {err}")
    handlers = logging.getLogger("airflow.task").handlers
    handler_class = type(handlers[0]) if handlers else None
    hook = version_compat.hook_called_by(handler_class or FileTaskHandler)
    return Activation(
        core=version_compat.core_version(),
        handler=None if handler_class is None else f"{handler_class.__module__}.{handler_class.__qualname__}",
        wrapped=handler_class is not None and issubclass(handler_class, ExecutorLogReaderMixin),
        hook=hook,
    )
