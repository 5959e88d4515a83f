"""Find a task instance's executor *class*, and its team, without building the executor."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_executor_logs import version_compat

if TYPE_CHECKING:
    from airflow.executors.base_executor import BaseExecutor
    from airflow.executors.executor_utils import ExecutorName

__all__ = ["ExecutorResolutionError", "ExecutorResolver", "ResolvedExecutor"]


class ExecutorResolutionError(Exception):
    """The executor named on a task instance cannot be found or imported."""


@dataclass(frozen=True)
class ResolvedExecutor:
    """What a reader is told about the task's executor: its class, configured name and team."""

    name: ExecutorName
    executor_cls: type[BaseExecutor]
    #: The team of the task's Dag (multi-team only), looked up once per read.
    team_name: str | None = None

    def overrides_get_task_log(self) -> bool:
        """Whether the class reads logs itself rather than inheriting ``BaseExecutor``'s empty answer."""
        from airflow.executors.base_executor import BaseExecutor

        return getattr(self.executor_cls, "get_task_log", None) is not BaseExecutor.get_task_log


class ExecutorResolver:
    """Resolves executor classes the way the scheduler picks them; caches classes, never instances."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str | None, str | None], ResolvedExecutor] = {}
        self._lock = threading.Lock()

    def resolve(self, ti: Any, *, multi_team: bool) -> ResolvedExecutor:
        """
        Resolve the executor class for ``ti``.

        ``ti.executor`` may be an alias, a module path or a class name; without one the team's (or the
        global) default executor is used. The team is looked up once, only when ``multi_team`` is on.

        :raises ExecutorResolutionError: with a message naming the executor and the reason.
        """
        requested: str | None = getattr(ti, "executor", None) or None
        return self.resolve_name(requested, _team_of(ti) if multi_team else None)

    def resolve_name(self, requested: str | None, team_name: str | None) -> ResolvedExecutor:
        """
        Resolve the executor class ``requested`` names for ``team_name`` (``None``: the default executor).

        :raises ExecutorResolutionError: with a message naming the executor and the reason.
        """
        key = (requested, team_name)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        resolved = _resolve_uncached(requested, team_name)
        with self._lock:
            return self._cache.setdefault(key, resolved)


def _team_of(ti: Any) -> str | None:
    try:
        return version_compat.team_of_dag(ti.dag_id)
    except Exception as err:
        raise ExecutorResolutionError(
            f"Cannot find the team of Dag {getattr(ti, 'dag_id', None)!r}: {type(err).__name__}: {err}"
        ) from err


def _resolve_uncached(requested: str | None, team_name: str | None) -> ResolvedExecutor:
    from airflow.executors.executor_loader import ExecutorLoader

    label = f"executor {requested!r}" if requested else "the default executor"
    try:
        name = _lookup_name(requested, team_name)
    except Exception as err:
        configured = _configured_executors()
        team = f" for team {team_name!r}" if team_name else ""
        raise ExecutorResolutionError(f"Cannot find {label}{team} in [core] executor = {configured} ({err})") from err
    try:
        executor_cls, _ = ExecutorLoader.import_executor_cls(name)
    except Exception as err:
        raise ExecutorResolutionError(
            f"Cannot import {label} from {name.module_path!r}: {type(err).__name__}: {err}"
        ) from err
    return ResolvedExecutor(name=name, executor_cls=executor_cls, team_name=team_name)


def _lookup_name(requested: str | None, team_name: str | None) -> ExecutorName:
    version_compat.load_executor_names()
    if requested is None:
        if team_name is not None:
            try:
                return version_compat.default_executor_name(team_name)
            except IndexError:
                pass  # the team configures no executor of its own: the global default applies
        return version_compat.default_executor_name(None)
    if team_name is not None:
        try:
            return version_compat.lookup_executor_name(requested, team_name)
        except Exception:
            pass  # not a team executor: global executors serve every team
    return version_compat.lookup_executor_name(requested, None)


def _configured_executors() -> str:
    from airflow.configuration import conf

    return repr(conf.get("core", "executor", fallback=""))
