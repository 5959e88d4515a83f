"""
Executors with known behaviour, importable by module path from ``[core] executor``.

* :class:`PlainExecutor` inherits ``BaseExecutor.get_task_log`` (like Local or Celery): nothing needs
  to be built to read its logs.
* :class:`ManagerExecutor` forks a ``multiprocessing`` Manager in ``__init__`` and overrides
  ``get_task_log``, like ``KubernetesExecutor`` before cncf-kubernetes 10.19; :class:`ForkingLogExecutor`
  also fails ``end()`` before ``start()``, as that provider does. Every double starts its processes with the
  process's default start method, as providers do (``fork`` before Python 3.14, ``forkserver`` from it).
* The other classes misbehave in one way each (raise, hang, leave processes behind) for fallback tests.

Short-lived executors run in a child process, so the doubles record what happens to them in a journal
(:mod:`~airflow_executor_logs_testing.executor_journal`).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any, ClassVar

from airflow.executors.base_executor import BaseExecutor

from airflow_executor_logs_testing.executor_journal import Journaled, constructed, ended, events, record

__all__ = [
    "ALL_CLASSES",
    "FALLBACK_CLASSES",
    "FALLBACK_LINE",
    "FALLBACK_SOURCE",
    "MARKER_ENV",
    "CountingExecutor",
    "ForkingLogExecutor",
    "ForkserverManagerExecutor",
    "ManagerExecutor",
    "PlainExecutor",
    "all_executors_setting",
    "constructed",
    "ended",
    "events",
    "executor_setting",
    "path",
]

MODULE = __name__
#: Marks every process a double starts, so a test can find them anywhere (reparented to PID 1 too).
MARKER_ENV = "AEL_FAKE_EXECUTOR_MARKER"
#: What :class:`CountingExecutor` and its subclasses read: ``get_task_log``'s source and its one line.
LOG_SOURCE = "read by {executor}"
LOG_LINE = "line for {task_id} try {try_number}"
FALLBACK_SOURCE = LOG_SOURCE.format(executor="ForkingLogExecutor")
FALLBACK_LINE = LOG_LINE

_SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]
#: A process that starts a grandchild and sleeps.
_PARENT_OF_SLEEPER = [
    sys.executable,
    "-c",
    f"import subprocess, time; subprocess.Popen({_SLEEPER!r}); time.sleep(3600)",
]
#: A process that starts a grandchild and exits at once: the grandchild is orphaned.
_DAEMONIZER = [sys.executable, "-c", f"import subprocess; subprocess.Popen({_SLEEPER!r}, start_new_session=True)"]


def path(cls: type) -> str:
    """``cls``'s module path, as ``[core] executor`` names it."""
    return f"{MODULE}.{cls.__name__}"


def _sleep_forever() -> None:
    time.sleep(3600)


def _marked_env() -> dict[str, str]:
    return {**os.environ, MARKER_ENV: os.environ.get(MARKER_ENV, "unmarked")}


class PlainExecutor(BaseExecutor, metaclass=Journaled):
    """Like Local or Celery: inherits ``BaseExecutor.get_task_log``, so it must never be built for logs."""


class CountingExecutor(BaseExecutor, metaclass=Journaled):
    """Reads logs like an executor that has them (one source, one line); journals ``end()``."""

    supports_multi_team = True

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """:data:`LOG_SOURCE` and :data:`LOG_LINE` for this class, task and try."""
        source = LOG_SOURCE.format(executor=type(self).__name__)
        return [source], [LOG_LINE.format(task_id=ti.task_id, try_number=try_number)]

    def end(self) -> None:
        """Journal the call."""
        record("ended", type(self))


class ManagerExecutor(CountingExecutor):
    """Like KubernetesExecutor before provider 10.19: forks a Manager in ``__init__``."""

    #: Start method of the Manager process (``None``: the process's default, as the provider does).
    start_method: ClassVar[str | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._manager = multiprocessing.get_context(self.start_method).Manager()
        self.queue = self._manager.Queue()


class ForkserverManagerExecutor(ManagerExecutor):
    """A :class:`ManagerExecutor` that asks for the ``forkserver`` context by name, whatever the default."""

    start_method = "forkserver"


class ForkingLogExecutor(ManagerExecutor):
    """A :class:`ManagerExecutor` whose ``end()`` fails before ``start()``, as the provider's did on 10.18.

    Whoever built one without starting it must shut the Manager down some other way.
    """

    def start(self) -> None:
        """Mark the executor started (nothing to run)."""
        self._started = True

    def end(self) -> None:
        """Shut the Manager down, but only once ``start()`` ran."""
        super().end()
        if not getattr(self, "_started", False):
            raise RuntimeError("ForkingLogExecutor.end() called before start()")
        self._manager.shutdown()


class ProcessExecutor(CountingExecutor):
    """Starts a bare ``multiprocessing.Process`` in ``__init__`` and keeps no handle to it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        multiprocessing.get_context().Process(target=_sleep_forever, daemon=False).start()


class StartsOnReadExecutor(ManagerExecutor):
    """
    Shaped like apache-airflow-providers-nomad: a Manager in ``__init__``; ``get_task_log`` calls
    ``start()``, which starts a worker process and a helper ``subprocess.Popen`` kept nowhere.
    """

    def start(self) -> None:
        """Start a worker process and a helper process, and keep no handle to the helper."""
        self.worker = multiprocessing.get_context().Process(target=_sleep_forever, daemon=False)
        self.worker.start()
        subprocess.Popen(_SLEEPER, env=_marked_env())

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """Start, then read."""
        self.start()
        return super().get_task_log(ti, try_number)


class GrandchildExecutor(CountingExecutor):
    """``get_task_log`` starts a bare subprocess with a grandchild, and an orphaned grandchild."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """Start the processes, then read."""
        subprocess.Popen(_PARENT_OF_SLEEPER, env=_marked_env())
        subprocess.run(_DAEMONIZER, env=_marked_env(), check=True)
        time.sleep(0.3)  # let the grandchildren start
        return super().get_task_log(ti, try_number)


class InitRaisesExecutor(ManagerExecutor):
    """Raises in ``__init__`` after starting a Manager."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raise RuntimeError("init exploded after starting a Manager")


class GetLogRaisesExecutor(ManagerExecutor):
    """``get_task_log`` raises."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """Raise."""
        raise RuntimeError("get_task_log exploded")


class EndRaisesExecutor(ManagerExecutor):
    """``end()`` raises."""

    def end(self) -> None:
        """Journal the call, then raise."""
        super().end()
        raise RuntimeError("end exploded")


class EndNotImplementedExecutor(ManagerExecutor):
    """``end()`` raises ``NotImplementedError``."""

    def end(self) -> None:
        """Journal the call, then raise."""
        super().end()
        raise NotImplementedError


class GetLogHangsExecutor(ManagerExecutor):
    """``get_task_log`` blocks for an hour."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """Block."""
        time.sleep(3600)
        return ["released"], []


class EndHangsExecutor(ManagerExecutor):
    """``end()`` blocks for an hour."""

    def end(self) -> None:
        """Journal the call, then block."""
        super().end()
        time.sleep(3600)


class InitHangsExecutor(CountingExecutor):
    """Starts a Manager, then blocks in ``__init__``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._manager = multiprocessing.get_context().Manager()
        time.sleep(3600)


class DeadManagerExecutor(ManagerExecutor):
    """Its Manager process is already dead when the read ends."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """Kill the Manager, then read."""
        process = self._manager._process  # type: ignore[attr-defined]
        process.kill()
        process.join(5)
        return super().get_task_log(ti, try_number)


class NativeReaderExecutor(ManagerExecutor):
    """Has a class-level reader, so it should never be built for logs."""

    @classmethod
    def class_get_task_log(cls, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """Read without an instance."""
        return [f"class-level read of {ti.task_id}"], [f"native line try {try_number}"]


class OverridesBelowNativeExecutor(NativeReaderExecutor):
    """Overrides ``get_task_log`` below the class that has the native reader."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """Read through the instance."""
        return ["subclass instance read"], []


class InheritsNativeExecutor(NativeReaderExecutor):
    """Changes nothing about reading, so the native reader still applies."""


FALLBACK_CLASSES: list[type[BaseExecutor]] = [
    CountingExecutor,
    ManagerExecutor,
    ForkserverManagerExecutor,
    ProcessExecutor,
    StartsOnReadExecutor,
    GrandchildExecutor,
    InitRaisesExecutor,
    GetLogRaisesExecutor,
    EndRaisesExecutor,
    EndNotImplementedExecutor,
    GetLogHangsExecutor,
    EndHangsExecutor,
    InitHangsExecutor,
    DeadManagerExecutor,
]
ALL_CLASSES: list[type[BaseExecutor]] = [
    *FALLBACK_CLASSES,
    PlainExecutor,
    NativeReaderExecutor,
    OverridesBelowNativeExecutor,
    InheritsNativeExecutor,
]


def executor_setting(*classes: type) -> str:
    """A ``[core] executor`` value naming ``classes`` by module path (the first is the default)."""
    return ",".join(path(cls) for cls in classes)


def all_executors_setting(default: type | None = None) -> str:
    """:func:`executor_setting` for every double, ``default`` first."""
    first = [default] if default else []
    return executor_setting(*first, *[cls for cls in ALL_CLASSES if cls is not default])
