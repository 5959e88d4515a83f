"""Find a task instance's executor *class* without building the executor."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.executors.base_executor import BaseExecutor
    from airflow.executors.executor_utils import ExecutorName


class ExecutorResolutionError(Exception):
    """The executor named on a task instance cannot be found or imported."""


@dataclass(frozen=True)
class ResolvedExecutor:
    """An executor class and the configured name it was found under."""

    name: ExecutorName
    executor_cls: type[BaseExecutor]

    @property
    def team_name(self) -> str | None:
        return self.name.team_name

    def overrides_get_task_log(self) -> bool:
        """Whether the class reads logs itself rather than inheriting ``BaseExecutor``'s empty answer."""
        from airflow.executors.base_executor import BaseExecutor

        return getattr(self.executor_cls, "get_task_log", None) is not BaseExecutor.get_task_log

    def build(self) -> BaseExecutor:
        """Build an executor instance exactly as Airflow's ``ExecutorLoader`` does."""
        from airflow.executors.executor_loader import ExecutorLoader

        return ExecutorLoader.load_executor(self.name)


_cache: dict[tuple[str | None, str | None], ResolvedExecutor] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every resolved class (for tests, and after the executor config changes)."""
    with _cache_lock:
        _cache.clear()


def team_name_for(ti: Any) -> str | None:
    """The team owning the task's Dag when multi-team is on, else ``None``."""
    from airflow.configuration import conf

    from airflow_executor_logs.config import cached

    if not cached(("core", "multi_team"), lambda: conf.getboolean("core", "multi_team", fallback=False)):
        return None
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(ti.dag_id)


def resolve_executor(ti: Any) -> ResolvedExecutor:
    """
    Resolve the executor class for ``ti`` the way the scheduler picks its executor.

    ``ti.executor`` may be an alias, a module path or a class name; without one the team's (or the
    global) default executor is used. Results are cached per process.

    :raises ExecutorResolutionError: with a message naming the executor and the reason.
    """
    requested: str | None = getattr(ti, "executor", None) or None
    try:
        team_name = team_name_for(ti)
    except Exception as err:
        raise ExecutorResolutionError(
            f"Cannot find the team of Dag {getattr(ti, 'dag_id', None)!r}: {type(err).__name__}: {err}"
        ) from err
    key = (requested, team_name)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached

    resolved = _resolve_uncached(requested, team_name)
    with _cache_lock:
        return _cache.setdefault(key, resolved)


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
    return ResolvedExecutor(name=name, executor_cls=executor_cls)


def _lookup_name(requested: str | None, team_name: str | None) -> ExecutorName:
    from airflow.executors.executor_loader import ExecutorLoader

    # Parse [core] executor once without checking that each team exists in the database: that is
    # the scheduler's job, and a log read must not fail (or query) for it.
    ExecutorLoader.get_executor_names(validate_teams=False)
    if requested is None:
        if team_name is not None:
            try:
                return ExecutorLoader.get_default_executor_name(team_name)
            except IndexError:
                pass  # the team configures no executor of its own: the global default applies
        return ExecutorLoader.get_default_executor_name()
    if team_name is not None:
        try:
            return ExecutorLoader.lookup_executor_name_by_str(requested, team_name=team_name, validate_teams=False)
        except Exception:
            pass  # not a team executor: global executors serve every team
    return ExecutorLoader.lookup_executor_name_by_str(requested, validate_teams=False)


def _configured_executors() -> str:
    from airflow.configuration import conf

    return repr(conf.get("core", "executor", fallback=""))
