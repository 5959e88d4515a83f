"""The checks of Airflow's logging config: our reader is enabled, and remote logging survived the switch."""

from __future__ import annotations

import importlib
from typing import Any

from airflow_executor_logs.cli.doctor.activation import check as check_activation
from airflow_executor_logs.cli.doctor.check.results import FAIL, OK, WARN, CheckResult

__all__ = ["OUR_CONFIG", "check_enabled", "check_remote_logging"]

OUR_CONFIG = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
_SET_OURS = f"set [logging] logging_config_class = {OUR_CONFIG}"


def _config_path() -> str:
    from airflow.configuration import conf

    return str(conf.get("logging", "logging_config_class", fallback="") or "")


def _import(path: str) -> Any:
    module, _, attribute = path.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def _handler_class(config: Any) -> type:
    handler = config["handlers"]["task"]
    cls = handler["class"] if isinstance(handler, dict) else None
    found = _import(cls) if isinstance(cls, str) else cls
    if not isinstance(found, type):
        raise TypeError(f"the 'task' handler's class is {found!r}, not a class")
    return found


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def check_enabled() -> CheckResult:
    """
    ``logging_config_class``'s task handler has our reader, the installed core calls a hook we know, and this
    process (configured by Airflow as the API server's workers are) logs through it: the doctor's activation.
    """
    from airflow_executor_logs import version_compat
    from airflow_executor_logs.utils.log.task_handler import ExecutorLogReaderMixin

    path = _config_path()
    if not path:
        return CheckResult(
            "enabled",
            None,
            FAIL,
            "[logging] logging_config_class is not set: Airflow's default task handler "
            "builds an executor to read a running task's log",
            _SET_OURS,
        )
    try:
        handler_cls = _handler_class(_import(path))
    except Exception as err:
        return CheckResult(
            "enabled",
            None,
            FAIL,
            f"{path} (logging_config_class) cannot be loaded: {type(err).__name__}: {err}",
            f"make {path} an importable logging config dict with a 'task' handler, or {_SET_OURS}",
            {"logging_config_class": path},
        )
    details: dict[str, Any] = {"logging_config_class": path, "handler": _name(handler_cls)}
    if not isinstance(handler_cls, type) or not issubclass(handler_cls, ExecutorLogReaderMixin):
        fix = (
            _SET_OURS
            if path.startswith("airflow.")
            else (
                f"in {path.rpartition('.')[0]}, wrap the config: "
                f"{path.rpartition('.')[2]} = wrap_logging_config(...) (from airflow_executor_logs.logging_config)"
            )
        )
        return CheckResult(
            "enabled",
            None,
            FAIL,
            f"{path}'s task handler {_name(handler_cls)} has no executor-log "
            "reader: the stock one builds an executor per API worker",
            fix,
            details,
        )
    wrapped = next(k for k in handler_cls.__mro__ if not issubclass(k, ExecutorLogReaderMixin))
    details["wraps"] = _name(wrapped)
    hook = version_compat.hook_called_by(handler_cls)
    details["hook"] = hook
    if hook is None:
        return CheckResult(
            "enabled",
            None,
            FAIL,
            f"Airflow core {version_compat.core_version()}'s FileTaskHandler._read calls no hook "
            "this package knows: running tasks' logs are read the stock way",
            "install an Airflow core from 3.0 to 3.4 (the releases this package supports)",
            details,
        )
    summary = f"{path} wraps {wrapped.__name__} ({_name(wrapped)}); core calls {hook}"
    activation = check_activation()
    details["activation"] = activation.as_dict()
    if not activation.active:
        return CheckResult(
            "enabled",
            None,
            WARN,
            f"{summary}, but in this process {activation.describe()}",
            "start the API server with the same configuration as this check (its logging is configured at import)",
            details,
        )
    return CheckResult("enabled", None, OK, summary, None, details)


def check_remote_logging() -> CheckResult:
    """With ``[logging] remote_logging`` on, the config's module has a ``REMOTE_TASK_LOG`` of the configured kind."""
    from airflow.configuration import conf

    if not conf.getboolean("logging", "remote_logging", fallback=False):
        return CheckResult("remote-logging", None, OK, "[logging] remote_logging is off: nothing to keep")
    path = _config_path() or "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"
    module = path.rpartition(".")[0]
    details: dict[str, Any] = {"module": module}
    try:
        remote = getattr(importlib.import_module(module), "REMOTE_TASK_LOG", None)
    except Exception as err:
        return CheckResult(
            "remote-logging",
            None,
            FAIL,
            f"{module} cannot be imported: {type(err).__name__}: {err}",
            f"make {module} importable where the API server runs",
            details,
        )
    if remote is None:
        return CheckResult(
            "remote-logging",
            None,
            FAIL,
            f"[logging] remote_logging is on, but {module} has no REMOTE_TASK_LOG: "
            "Airflow reads it from the logging config's module, so remote logs are neither written nor read",
            f"in {module}: from airflow_executor_logs.logging_config import DEFAULT_REMOTE_CONN_ID, REMOTE_TASK_LOG",
            details,
        )
    details["remote_task_log"] = _name(type(remote))
    expected = _configured_kind()
    if expected is not None and not isinstance(remote, expected):
        details["configured"] = _name(expected)
        return CheckResult(
            "remote-logging",
            None,
            WARN,
            f"{module}.REMOTE_TASK_LOG is set ({type(remote).__name__}), but "
            f"[logging] remote_base_log_folder configures {expected.__name__}",
            f"in {module}: from airflow_executor_logs.logging_config import DEFAULT_REMOTE_CONN_ID, REMOTE_TASK_LOG",
            details,
        )
    return CheckResult(
        "remote-logging", None, OK, f"{module}.REMOTE_TASK_LOG is set ({type(remote).__name__})", None, details
    )


def _configured_kind() -> type | None:
    """The class of the ``REMOTE_TASK_LOG`` Airflow's own settings build from ``remote_base_log_folder``."""
    try:
        from airflow.config_templates import airflow_local_settings
    except Exception:
        return None
    remote = getattr(airflow_local_settings, "REMOTE_TASK_LOG", None)
    return None if remote is None else type(remote)
