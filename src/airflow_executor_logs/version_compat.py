"""
How the installed Airflow core differs from other 3.x lines: the one module that knows.

Everything is detected from what the core has (signatures, attributes, the names ``_read`` calls),
never from its version string. Like the providers' ``version_compat.py``.

============================  =========================================  ==============================
difference                    3.0 / 3.1                                  3.2 and later
============================  =========================================  ==============================
``ExecutorLoader`` lookups    no ``team_name`` / ``validate_teams``      both keyword arguments
teams                         none (3.0: ``team_id``; no ``multi_team``)  ``[core] multi_team``,
                                                                          ``DagModel.get_team_name``
the hook ``_read`` calls      ``_get_executor_get_task_log`` (to 3.3)    ``_get_executor`` (3.4)
``_render_filename`` session  ``@provide_session``: a new session when   keyword-only (3.3); 3.4 no
                              none is passed (3.0 to 3.3)                longer decorated, ``None`` opens
                                                                         one in ``prepare_task_log_contexts``
============================  =========================================  ==============================
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.executors.executor_utils import ExecutorName

#: The hooks a core's ``FileTaskHandler._read`` may call to reach the task's executor.
__all__ = [
    "HOOK_GET_EXECUTOR",
    "HOOK_GET_TASK_LOG",
    "core_version",
    "default_executor_name",
    "hook_called_by",
    "load_executor_names",
    "lookup_executor_name",
    "read_hook",
    "remote_task_log",
    "render_filename_kwargs",
    "served_log_fetch",
    "session_of",
    "stats",
    "supports_provider_cli",
    "supports_teams",
    "team_of_dag",
]

HOOK_GET_TASK_LOG = "_get_executor_get_task_log"  # returns ``executor.get_task_log`` (3.0 to 3.3)
HOOK_GET_EXECUTOR = "_get_executor"  # returns the executor; ``get_streaming_task_log`` first (3.4)


# ---------------------------------------------------------------------------------- executor loader


@functools.cache
def _loader_knows_teams() -> bool:
    from airflow.executors.executor_loader import ExecutorLoader

    return "validate_teams" in inspect.signature(ExecutorLoader.get_executor_names).parameters


def load_executor_names() -> list[ExecutorName]:
    """Parse ``[core] executor`` without checking that each team exists (the scheduler's job); every name."""
    from airflow.executors.executor_loader import ExecutorLoader

    if _loader_knows_teams():
        return list(ExecutorLoader.get_executor_names(validate_teams=False))  # type: ignore[call-arg,unused-ignore]
    return list(ExecutorLoader.get_executor_names())


def default_executor_name(team_name: str | None) -> ExecutorName:
    """The team's default executor (``IndexError`` if it has none), or the global default."""
    from airflow.executors.executor_loader import ExecutorLoader

    if team_name is not None and _loader_knows_teams():
        return ExecutorLoader.get_default_executor_name(team_name)  # type: ignore[call-arg,unused-ignore]  # 3.2+
    return ExecutorLoader.get_default_executor_name()


def lookup_executor_name(name: str, team_name: str | None) -> ExecutorName:
    """The configured executor an alias, module path or class name names, for a team or globally."""
    from airflow.executors.executor_loader import ExecutorLoader

    if not _loader_knows_teams():
        if team_name is not None:
            raise LookupError("this Airflow core has no team executors")
        return ExecutorLoader.lookup_executor_name_by_str(name)
    return ExecutorLoader.lookup_executor_name_by_str(  # type: ignore[call-arg,unused-ignore]  # 3.2+
        name, team_name=team_name, validate_teams=False
    )


# ---------------------------------------------------------------------------------- teams


def team_of_dag(dag_id: str) -> str | None:
    """The team owning ``dag_id``; ``None`` on cores without teams."""
    from airflow.models.dag import DagModel

    get_team_name = getattr(DagModel, "get_team_name", None)
    return None if get_team_name is None else get_team_name(dag_id)


# ---------------------------------------------------------------------------------- the read hook


@functools.cache
def read_hook() -> str | None:
    """The hook the installed core's ``FileTaskHandler._read`` calls, ``None`` if neither is known."""
    from airflow.utils.log.file_task_handler import FileTaskHandler

    return hook_called_by(FileTaskHandler)


def hook_called_by(handler_class: type) -> str | None:
    """
    Which of the known hooks ``handler_class._read`` calls (and the class has), if any.

    Follows ``super()._read`` down the MRO: a ``_read`` that wraps its parent's (as the mixin's does)
    calls whatever the parent's calls.
    """
    for klass in handler_class.__mro__:
        read = vars(klass).get("_read")
        if read is None:
            continue
        names = set(getattr(getattr(read, "__code__", None), "co_names", ()))
        for hook in (HOOK_GET_TASK_LOG, HOOK_GET_EXECUTOR):
            if hook in names and callable(getattr(handler_class, hook, None)):
                return hook
        if "_read" not in names:
            return None  # a _read of its own that does not call its parent's
    return None


def served_log_fetch() -> Any:
    """
    Core's ``_fetch_logs_from_service(url, log_relative_path)``: the request to a worker's log server, signed as
    core signs it (a JWT over the file name, with ``[api] secret_key``; the fetch timeout is ``[webserver]
    log_fetch_timeout_sec`` on 3.0 and ``[api]``'s from 3.1). Its answer is a streamed ``requests`` response.
    """
    from airflow.utils.log import file_task_handler

    return file_task_handler._fetch_logs_from_service


def stats() -> Any:
    """Airflow's ``Stats``: from the Task SDK where it lives (3.2+), else ``airflow.stats`` (3.0, 3.1)."""
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # importing it on 3.2+ warns: it is a deprecated shim there
        from airflow.stats import Stats
    return Stats


def remote_task_log() -> Any:
    """
    The ``RemoteLogIO`` core reads remote logs with (``None``: none). 3.2 on have ``get_remote_task_log``; 3.0 and
    3.1 keep it as a module attribute, set once logging is configured. Their module ``__getattr__`` answers
    ``None`` for any other name and loads the logging config again for that one, so neither is asked for.
    """
    import airflow.logging_config as logging_config

    found = vars(logging_config)
    getter = found.get("get_remote_task_log")
    return getter() if callable(getter) else found.get("REMOTE_TASK_LOG")


def core_version() -> str:
    from airflow import __version__

    return str(__version__)


# ---------------------------------------------------------------------------------- the log file name


def session_of(ti: Any) -> Any:
    """The ORM session ``ti`` is loaded in; ``None`` if detached or not an ORM object at all."""
    from sqlalchemy.orm import object_session
    from sqlalchemy.orm.exc import UnmappedInstanceError

    try:
        return object_session(ti)
    except UnmappedInstanceError:
        return None


def render_filename_kwargs(ti: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    ``_render_filename``'s keyword arguments, with ``session`` set to the one ``ti`` is loaded in.

    Every core opens a session of its own when none is passed (3.0 to 3.3 through ``@provide_session``,
    3.4 in ``prepare_task_log_contexts``): a second pooled connection per read while the endpoint's
    session holds the first. ``session`` is keyword-accepted on every line. A ``None`` is dropped, so
    ``@provide_session`` does not take it for a session.
    """
    kwargs = {**kwargs}
    if kwargs.get("session") is None:
        kwargs.pop("session", None)
        session = session_of(ti)
        if session is not None:
            kwargs["session"] = session
    return kwargs


# ---------------------------------------------------------------------------------- optional features


def supports_teams() -> bool:
    """Whether this core has multi-team deployments (``[core] multi_team``, from 3.2)."""
    from airflow.configuration import conf

    return bool(conf.has_option("core", "multi_team"))


def supports_provider_cli() -> bool:
    """Whether this core adds the ``cli`` commands a provider declares (from 3.2; ignored before)."""
    from airflow.providers_manager import ProvidersManager

    return hasattr(ProvidersManager, "cli_command_functions")
