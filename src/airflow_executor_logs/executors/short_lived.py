"""
Build an executor for one read and leave nothing running afterwards.

Used for executor classes that override ``get_task_log`` but have no class-level reader.
:func:`call_with_short_lived_executor` runs build, read and teardown in an isolated child process,
forked by the single-threaded helper it is given (a :class:`~airflow_executor_logs.utils.zygote.Zygote`,
the pipeline's), never by the threaded worker itself: whatever the executor starts, in ``__init__``, ``get_task_log`` or
``end()``, held on the instance or not, children and grandchildren alike, under any start method, is
stopped before the read returns, and concurrent reads never touch each other's processes.

The call and the task instance cross to the child pickled: an ORM task instance as a detached copy
of its columns (:func:`portable_task_instance`), so no session, relationship or lock comes along.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.managers import BaseManager
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_executor_logs.utils.isolated_call import IsolatedCallTimedOut

if TYPE_CHECKING:
    from airflow.executors.base_executor import BaseExecutor

    from airflow_executor_logs.executors.resilience.deadline import Deadline
    from airflow_executor_logs.executors.resolution import ResolvedExecutor
    from airflow_executor_logs.utils.zygote import Zygote

log = logging.getLogger(__name__)

__all__ = [
    "PRELOAD",
    "ExecutorDeadlineExceeded",
    "ShortLivedExecutor",
    "call_with_short_lived_executor",
    "portable_task_instance",
    "read_with_short_lived_executor",
    "short_lived_executor",
]

T = TypeVar("T")

_TERMINATE_GRACE = 2.0


class ExecutorDeadlineExceeded(TimeoutError):
    """The short-lived executor did not finish within its deadline; its processes were stopped."""


class ShortLivedExecutor:
    """One executor instance, built for one call and closed after it."""

    def __init__(self, resolved: ResolvedExecutor) -> None:
        self.resolved = resolved
        self.executor: BaseExecutor | None = None

    def build(self) -> BaseExecutor:
        """Build an executor instance exactly as Airflow's ``ExecutorLoader`` does."""
        from airflow.executors.executor_loader import ExecutorLoader

        self.executor = ExecutorLoader.load_executor(self.resolved.name)
        return self.executor

    def close(self) -> None:
        """``end()`` the executor, then shut down the Managers and processes it holds. Never raises."""
        executor = self.executor
        if executor is None:
            return
        _end_quietly(executor)
        for manager in _managers_of(executor):
            _shutdown_manager(manager)
        _stop_held_processes(_processes_of(executor))


@contextlib.contextmanager
def short_lived_executor(resolved: ResolvedExecutor) -> Iterator[BaseExecutor]:
    """
    Build the executor of ``resolved`` in this process, and close it on every way out of the block.

    Closing stops what the instance holds. Processes it started and keeps nowhere are out of its
    reach: use :func:`call_with_short_lived_executor` for those.
    """
    session = ShortLivedExecutor(resolved)
    try:
        yield session.build()
    finally:
        session.close()


def call_with_short_lived_executor(
    resolved: ResolvedExecutor,
    call: Callable[[BaseExecutor], T],
    *,
    helper: Zygote,
    deadline: Deadline,
    idle: float = 120.0,
) -> T:
    """
    ``call(executor)`` on a short-lived executor in a child process ``helper`` forks, before ``deadline``.

    ``call`` and its answer must pickle (a module-level function, or a ``functools.partial`` of one).
    On return, on an exception (re-raised here as
    :class:`~airflow_executor_logs.utils.isolated_call.IsolatedCallFailed`) and at the deadline
    (:class:`ExecutorDeadlineExceeded`), every process started for the call is gone. ``helper``: in an
    API server worker, its pipeline's (``process_pipeline().helper``). ``idle``: seconds the helper
    process waits for the next call before it exits.
    """
    started = time.monotonic()
    try:
        return helper.call(
            functools.partial(_build_call_close, resolved, call),
            deadline=deadline,
            grace=_TERMINATE_GRACE,
            idle=idle,
            preload=(*PRELOAD, resolved.executor_cls.__module__),
        )
    except IsolatedCallTimedOut:
        raise ExecutorDeadlineExceeded(
            f"{resolved.executor_cls.__name__} did not return logs within {deadline.seconds:.3g} s "
            f"(waited {time.monotonic() - started:.1f} s); its processes were stopped"
        ) from None


def read_with_short_lived_executor(
    resolved: ResolvedExecutor, ti: Any, try_number: int, *, helper: Zygote, deadline: Deadline, idle: float = 120.0
) -> tuple[list[str], list[str]]:
    """``get_task_log(ti, try_number)`` of a short-lived executor, as plain lists of strings (they pickle)."""
    call = functools.partial(_get_task_log, portable_task_instance(ti), try_number)
    return call_with_short_lived_executor(resolved, call, helper=helper, deadline=deadline, idle=idle)


#: What the helper imports once, so its children do not each import it.
PRELOAD = (
    "airflow.executors.executor_loader",
    "airflow.models.taskinstance",
    # What BaseExecutor.__init__ and a Manager import on the first build: each read would import them again.
    "airflow.executors.base_executor",
    "airflow.api_fastapi.auth.tokens",
    "multiprocessing.managers",
)


def _build_call_close(resolved: ResolvedExecutor, call: Callable[[BaseExecutor], T]) -> T:
    with short_lived_executor(resolved) as executor:
        return call(executor)


def _get_task_log(ti: Any, try_number: int, executor: BaseExecutor) -> tuple[list[str], list[str]]:
    messages, logs = executor.get_task_log(ti, try_number)
    return [str(message) for message in messages], [str(chunk) for chunk in logs]


def portable_task_instance(ti: Any) -> Any:
    """
    ``ti`` as it may cross to another process: for an ORM instance, a detached copy of its loaded columns.

    Attributes not loaded are left unset rather than fetched: the copy never touches the database.
    Anything else (a stand-in object) is returned as it is.
    """
    try:
        import sqlalchemy
        from sqlalchemy.orm.attributes import set_committed_value

        mapper = sqlalchemy.inspect(type(ti), raiseerr=False)
        state = sqlalchemy.inspect(ti, raiseerr=False)
    except ImportError:  # pragma: no cover - Airflow always has SQLAlchemy
        return ti
    if mapper is None or state is None:
        return ti
    loaded = state.dict
    copy = mapper.class_manager.new_instance()
    for column in mapper.column_attrs:
        if column.key in loaded:
            set_committed_value(copy, column.key, loaded[column.key])
    return copy


def _end_quietly(executor: BaseExecutor) -> None:
    try:
        executor.end()
    except NotImplementedError:
        pass
    except Exception as err:
        # end() on an executor that was never started often trips over state start() sets up.
        log.debug("Ignoring %s from end() of never-started %s", err, type(executor).__name__)


def _attribute_values(executor: object) -> Iterable[object]:
    """The instance's attributes, and the items of any list, tuple, set or dict among them."""
    try:
        values = list(vars(executor).values())
    except TypeError:
        return []
    nested: list[object] = []
    for value in values:
        if isinstance(value, dict):
            nested.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            nested.extend(value)
    return values + nested


def _managers_of(executor: object) -> list[BaseManager]:
    return [value for value in _attribute_values(executor) if isinstance(value, BaseManager)]


def _processes_of(executor: object) -> list[BaseProcess]:
    return [value for value in _attribute_values(executor) if isinstance(value, BaseProcess)]


def _shutdown_manager(manager: BaseManager) -> None:
    shutdown = getattr(manager, "shutdown", None)
    if shutdown is None:
        return
    try:
        shutdown()
    except Exception as err:
        log.debug("Manager shutdown failed (%s); its process is stopped with the others", err)


def _stop_held_processes(processes: list[BaseProcess], grace: float = _TERMINATE_GRACE) -> None:
    started = [process for process in processes if process.pid is not None]
    for process in started:
        with contextlib.suppress(Exception):
            process.terminate()
    give_up_at = time.monotonic() + grace
    for process in started:
        with contextlib.suppress(Exception):
            process.join(max(give_up_at - time.monotonic(), 0.0))
            if process.is_alive():
                process.kill()
                process.join(grace)
