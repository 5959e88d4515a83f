"""
Executors with known behaviour, importable by module path from ``[core] executor``.

Short-lived executors run in a forked child, so the doubles record what happened to them in a
journal file (one line per event, appended atomically) rather than in memory.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airflow.executors.base_executor import BaseExecutor

MODULE = __name__
#: Marks every process a double starts, so a test can find them anywhere (reparented to PID 1 too).
MARKER_ENV = "AEL_FAKE_EXECUTOR_MARKER"
JOURNAL_ENV = "AEL_FAKE_EXECUTOR_JOURNAL"

_SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]
#: A process that starts a grandchild and sleeps.
_PARENT_OF_SLEEPER = [
    sys.executable,
    "-c",
    f"import subprocess, time; subprocess.Popen({_SLEEPER!r}); time.sleep(3600)",
]
#: A process that starts a grandchild and exits at once: the grandchild is orphaned.
_DAEMONIZER = [sys.executable, "-c", f"import subprocess; subprocess.Popen({_SLEEPER!r}, start_new_session=True)"]


def _journal() -> Path:
    return Path(os.environ[JOURNAL_ENV])


def _record(event: str, cls: type) -> None:
    fd = os.open(_journal(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{event} {cls.__name__} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def events(event: str, cls: type) -> int:
    """How many times ``event`` (``built``, ``ended``) happened to ``cls``, in any process."""
    try:
        lines = _journal().read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if line.split()[:2] == [event, cls.__name__])


def constructed(cls: type) -> int:
    return events("built", cls)


def ended(cls: type) -> int:
    return events("ended", cls)


def path(cls: type) -> str:
    return f"{MODULE}.{cls.__name__}"


def _sleep_forever() -> None:
    time.sleep(3600)


def _marked_env() -> dict[str, str]:
    return {**os.environ, MARKER_ENV: os.environ.get(MARKER_ENV, "unmarked")}


class CountingExecutor(BaseExecutor):
    """Records constructions and ends; reads logs like an executor that has them."""

    supports_multi_team = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _record("built", type(self))

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        return [f"read by {type(self).__name__}"], [f"line for {ti.task_id} try {try_number}"]

    def end(self) -> None:
        _record("ended", type(self))


class NoOverrideExecutor(BaseExecutor):
    """Like Local or Celery: inherits ``BaseExecutor.get_task_log``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _record("built", type(self))


class ManagerExecutor(CountingExecutor):
    """Like KubernetesExecutor on provider 10.18.0: forks a Manager in ``__init__``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._manager = multiprocessing.get_context("fork").Manager()
        self.queue = self._manager.Queue()


class ProcessExecutor(CountingExecutor):
    """Starts a bare ``multiprocessing.Process`` in ``__init__`` and keeps no handle to it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        multiprocessing.get_context("fork").Process(target=_sleep_forever, daemon=False).start()


class StartsOnReadExecutor(ManagerExecutor):
    """
    Shaped like apache-airflow-providers-nomad: a Manager in ``__init__``; ``get_task_log`` calls
    ``start()``, which starts a worker process and a helper ``subprocess.Popen`` kept nowhere.
    """

    def start(self) -> None:
        self.worker = multiprocessing.get_context("fork").Process(target=_sleep_forever, daemon=False)
        self.worker.start()
        subprocess.Popen(_SLEEPER, env=_marked_env())

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        self.start()
        return super().get_task_log(ti, try_number)


class GrandchildExecutor(CountingExecutor):
    """``get_task_log`` starts a bare subprocess with a grandchild, and an orphaned grandchild."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        subprocess.Popen(_PARENT_OF_SLEEPER, env=_marked_env())
        subprocess.run(_DAEMONIZER, env=_marked_env(), check=True)
        time.sleep(0.3)  # let the grandchildren start
        return super().get_task_log(ti, try_number)


class InitRaisesExecutor(ManagerExecutor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raise RuntimeError("init exploded after starting a Manager")


class GetLogRaisesExecutor(ManagerExecutor):
    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        raise RuntimeError("get_task_log exploded")


class EndRaisesExecutor(ManagerExecutor):
    def end(self) -> None:
        super().end()
        raise RuntimeError("end exploded")


class EndNotImplementedExecutor(ManagerExecutor):
    def end(self) -> None:
        super().end()
        raise NotImplementedError


class GetLogHangsExecutor(ManagerExecutor):
    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        time.sleep(3600)
        return ["released"], []


class EndHangsExecutor(ManagerExecutor):
    def end(self) -> None:
        super().end()
        time.sleep(3600)


class InitHangsExecutor(CountingExecutor):
    """Starts a Manager, then blocks in ``__init__``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._manager = multiprocessing.get_context("fork").Manager()
        time.sleep(3600)


class DeadManagerExecutor(ManagerExecutor):
    """Its Manager process is already dead when the read ends."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        process = self._manager._process  # type: ignore[attr-defined]
        process.kill()
        process.join(5)
        return super().get_task_log(ti, try_number)


class NativeReaderExecutor(ManagerExecutor):
    """Has a class-level reader, so it should never be built for logs."""

    @classmethod
    def class_get_task_log(cls, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        return [f"class-level read of {ti.task_id}"], [f"native line try {try_number}"]


class OverridesBelowNativeExecutor(NativeReaderExecutor):
    """Overrides ``get_task_log`` below the class that has the native reader."""

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        return ["subclass instance read"], []


class InheritsNativeExecutor(NativeReaderExecutor):
    """Changes nothing about reading, so the native reader still applies."""


FALLBACK_CLASSES = [
    CountingExecutor,
    ManagerExecutor,
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
ALL_CLASSES = [
    *FALLBACK_CLASSES,
    NoOverrideExecutor,
    NativeReaderExecutor,
    OverridesBelowNativeExecutor,
    InheritsNativeExecutor,
]


def executor_setting(*classes: type) -> str:
    """A ``[core] executor`` value naming ``classes`` by module path (the first is the default)."""
    return ",".join(path(cls) for cls in classes)


def all_executors_setting(default: type | None = None) -> str:
    first = [default] if default else []
    return executor_setting(*first, *[cls for cls in ALL_CLASSES if cls is not default])
