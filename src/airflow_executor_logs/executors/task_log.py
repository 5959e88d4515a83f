"""Read a RUNNING task's executor logs: class-level reader, nothing, or a short-lived executor."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from airflow_executor_logs import config, metrics
from airflow_executor_logs.executors.log_readers import TaskLog, find_reader
from airflow_executor_logs.executors.resolution import (
    ExecutorResolutionError,
    ResolvedExecutor,
    resolve_executor,
)
from airflow_executor_logs.executors.short_lived import (
    ExecutorDeadlineExceeded,
    call_with_short_lived_executor,
)

log = logging.getLogger(__name__)

NOTICE_LOGGER = "airflow_executor_logs"

_warned_classes: set[type] = set()
_warned_lock = threading.Lock()


def notice(message: str, level: str = "warning") -> str:
    """A log line Airflow's log parser turns into a structured message with ``level``."""
    return json.dumps({"event": message, "level": level, "logger": NOTICE_LOGGER})


def read_running_task_log(ti: Any, try_number: int) -> TaskLog:
    """
    Drop-in for ``executor.get_task_log(ti, try_number)`` that builds no long-lived executor.

    Problems are reported as lines in the log stream, never raised: an exception here would
    turn the log request into a 500.
    """
    try:
        resolved = resolve_executor(ti)
    except ExecutorResolutionError as err:
        metrics.incr(metrics.FAILURES, getattr(ti, "executor", None))
        return [], [notice(f"Executor logs unavailable: {err}", "error")]

    executor_cls = resolved.executor_cls
    reader = find_reader(executor_cls)
    if reader is not None:
        metrics.incr(metrics.CLASS_READS, executor_cls)
        try:
            return reader(executor_cls, ti, try_number)
        except Exception as err:
            log.exception("Class-level log reader for %s failed", executor_cls.__name__)
            metrics.incr(metrics.FAILURES, executor_cls)
            return [], [notice(_failure(executor_cls, err), "error")]

    if not resolved.overrides_get_task_log():
        return [], []
    return _read_with_short_lived_executor(resolved, ti, try_number)


def _read_with_short_lived_executor(resolved: ResolvedExecutor, ti: Any, try_number: int) -> TaskLog:
    executor_cls = resolved.executor_cls
    if not config.fallback_enabled():
        return [], [
            notice(
                f"Executor logs unavailable: {executor_cls.__name__} has no class-level log reader and "
                f"[{config.SECTION}] fallback_enabled is off."
            )
        ]
    _warn_once(executor_cls)
    metrics.incr(metrics.FALLBACK_READS, executor_cls)
    try:
        return call_with_short_lived_executor(
            resolved,
            lambda executor: executor.get_task_log(ti, try_number),
            deadline=config.fallback_timeout(),
        )
    except ExecutorDeadlineExceeded as err:
        metrics.incr(metrics.TIMEOUTS, executor_cls)
        return [], [notice(f"Executor logs unavailable: {err}", "error")]
    except Exception as err:
        log.exception("Short-lived %s failed to read task logs", executor_cls.__name__)
        metrics.incr(metrics.FAILURES, executor_cls)
        return [], [notice(_failure(executor_cls, err), "error")]


def _failure(executor_cls: type, err: BaseException) -> str:
    reason = f"{type(err).__name__}: {err}"
    return f"Executor logs unavailable: {executor_cls.__name__} failed to read logs: {reason}"


def _warn_once(executor_cls: type) -> None:
    with _warned_lock:
        if executor_cls in _warned_classes:
            return
        _warned_classes.add(executor_cls)
    log.warning(
        "%s.%s overrides get_task_log but has no class-level log reader; each read of a running "
        "task's logs builds a short-lived executor and tears it down. Register a reader to avoid it.",
        executor_cls.__module__,
        executor_cls.__qualname__,
    )
