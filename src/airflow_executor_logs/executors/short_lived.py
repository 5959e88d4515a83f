"""
Build an executor for one call and leave nothing running afterwards.

Used for executor classes that override ``get_task_log`` but have no class-level reader. Every
exit path (return, exception, deadline) calls ``end()``, shuts down each ``multiprocessing``
Manager the instance holds, and terminates and reaps each child process its construction started.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.managers import BaseManager
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Generic, TypeVar

import psutil

if TYPE_CHECKING:
    from airflow.executors.base_executor import BaseExecutor

    from airflow_executor_logs.executors.resolution import ResolvedExecutor

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Constructions are serialized so that each child process can be attributed to the one
#: construction that started it, and concurrent reads never stop each other's children.
_spawn_lock = threading.Lock()
_TERMINATE_GRACE = 2.0


class ExecutorDeadlineExceeded(TimeoutError):
    """The short-lived executor did not finish within its deadline; its processes were stopped."""


class ShortLivedExecutor:
    """One executor instance, the processes attributed to it, and their teardown."""

    def __init__(self, resolved: ResolvedExecutor) -> None:
        self.resolved = resolved
        self.executor: BaseExecutor | None = None
        self.child_pids: set[int] = set()
        self._holds_spawn_lock = False
        self._abandoned = False
        self._baseline: set[int] = set()
        self._state_lock = threading.Lock()

    def build(self, timeout: float | None = None) -> BaseExecutor:
        """Build the executor, recording every child process the construction starts."""
        if not _spawn_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise ExecutorDeadlineExceeded(
                f"Timed out waiting to build {self.resolved.executor_cls.__name__}: "
                "another short-lived executor is still being built"
            )
        with self._state_lock:
            self._holds_spawn_lock = True
            self._baseline = _child_pids()
        try:
            self.executor = self.resolved.build()
            return self.executor
        finally:
            with self._state_lock:
                if not self._abandoned:
                    self.child_pids |= _child_pids() - self._baseline
                self._release_spawn_lock()

    def close(self) -> None:
        """``end()`` the executor, then stop its Managers and children. Never raises."""
        executor = self.executor
        if executor is not None:
            _end_quietly(executor)
        self.stop_processes()

    def stop_processes(self) -> None:
        """Stop every Manager and child process attributed to this instance. Bounded; never raises."""
        with self._state_lock:
            if self._holds_spawn_lock:
                # The construction is still running (past its deadline): every child started since
                # it took the lock is its own. Release the lock on its behalf so other reads go on;
                # children started after this point are no longer attributed to it.
                self.child_pids |= _child_pids() - self._baseline
                self._abandoned = True
            pids = set(self.child_pids)
            self.child_pids.clear()  # stopped once: a later call must not signal a reused pid
            self._release_spawn_lock()
        executor = self.executor
        if executor is not None:
            for manager in _managers_of(executor):
                _shutdown_manager(manager)
            for process in _processes_of(executor):
                if process.pid is not None:
                    pids.add(process.pid)
        _terminate_and_reap(pids)

    def _release_spawn_lock(self) -> None:
        if self._holds_spawn_lock:
            self._holds_spawn_lock = False
            _spawn_lock.release()


def _child_pids() -> set[int]:
    try:
        return {child.pid for child in psutil.Process().children(recursive=False)}
    except psutil.Error:
        return set()


@contextlib.contextmanager
def short_lived_executor(resolved: ResolvedExecutor, timeout: float | None = None) -> Iterator[BaseExecutor]:
    """Build the executor of ``resolved`` and tear it down on every way out of the block."""
    session = ShortLivedExecutor(resolved)
    try:
        yield session.build(timeout)
    finally:
        session.close()  # also after a failed build: its children are attributed all the same


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


def call_with_short_lived_executor(
    resolved: ResolvedExecutor, call: Callable[[BaseExecutor], T], *, deadline: float
) -> T:
    """
    Run ``call(executor)`` on a short-lived executor, giving up after ``deadline`` seconds.

    Build, call and teardown run in a daemon thread. If they are not done by the deadline, every
    process attributed to the instance is stopped from here and :class:`ExecutorDeadlineExceeded`
    is raised; a call still blocked inside the executor goes on in that thread, holding no process.
    """
    session = ShortLivedExecutor(resolved)
    outcome: _Outcome[T] = _Outcome()
    started = time.monotonic()

    def work() -> None:
        try:
            try:
                outcome.value = call(session.build(timeout=deadline))
            finally:
                session.close()
        except BaseException as err:
            outcome.error = err
        finally:
            outcome.done.set()

    name = f"executor-logs-{resolved.executor_cls.__name__}"
    threading.Thread(target=work, name=name, daemon=True).start()
    if not outcome.done.wait(deadline):
        session.stop_processes()
        raise ExecutorDeadlineExceeded(
            f"{resolved.executor_cls.__name__} did not return logs within {deadline:g} s "
            f"(waited {time.monotonic() - started:.1f} s); its processes were stopped"
        )
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]


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
    process = getattr(manager, "_process", None)
    shutdown = getattr(manager, "shutdown", None)
    if shutdown is not None:
        try:
            shutdown()
        except Exception as err:
            log.debug("Manager shutdown failed (%s); stopping its process instead", err)
    if isinstance(process, BaseProcess) and process.pid is not None:
        _terminate_and_reap({process.pid})


def _terminate_and_reap(pids: Iterable[int], grace: float = _TERMINATE_GRACE) -> None:
    """SIGTERM each pid, SIGKILL it after ``grace``, and reap it (through multiprocessing if it owns it)."""
    pids = {pid for pid in pids if pid != os.getpid()}
    if not pids:
        return
    owned = [child for child in multiprocessing.active_children() if child.pid in pids]
    for child in owned:
        pids.discard(child.pid)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            child.terminate()
    others: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if process.ppid() != os.getpid():
                continue  # no longer our child: gone, or its pid reused by someone else
            process.terminate()
            others.append(process)
    give_up_at = time.monotonic() + grace
    for child in owned:
        child.join(max(give_up_at - time.monotonic(), 0.0))
    _, alive = psutil.wait_procs(others, timeout=max(give_up_at - time.monotonic(), 0.0))
    for child in owned:
        if child.is_alive():
            with contextlib.suppress(Exception):
                child.kill()
            child.join(grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace)
