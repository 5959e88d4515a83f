"""Executors with known behaviour, importable by module path from ``[core] executor``."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

from airflow.executors.base_executor import BaseExecutor

MODULE = __name__

#: How many times each class's ``__init__`` ran, by class name.
constructed: dict[str, int] = {}
_lock = threading.Lock()
#: Set to let every blocked fake executor call return.
release = threading.Event()


def _count(cls: type) -> None:
    with _lock:
        constructed[cls.__name__] = constructed.get(cls.__name__, 0) + 1


def path(cls: type) -> str:
    return f"{MODULE}.{cls.__name__}"


def _sleep_forever() -> None:
    time.sleep(3600)


class CountingExecutor(BaseExecutor):
    """Counts constructions; reads logs like an executor that has them."""

    ended = 0
    supports_multi_team = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _count(type(self))

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        return [f"read by {type(self).__name__}"], [f"line for {ti.task_id} try {try_number}"]

    def end(self) -> None:
        type(self).ended += 1


class NoOverrideExecutor(BaseExecutor):
    """Like Local or Celery: inherits ``BaseExecutor.get_task_log``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _count(type(self))


class ManagerExecutor(CountingExecutor):
    """Like KubernetesExecutor on provider 10.18.0: forks a Manager in ``__init__``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._manager = multiprocessing.Manager()
        self.queue = self._manager.Queue()


class ProcessExecutor(CountingExecutor):
    """Starts a bare ``multiprocessing.Process`` in ``__init__`` and keeps no handle to it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        multiprocessing.Process(target=_sleep_forever, daemon=False).start()


class InitRaisesExecutor(ManagerExecutor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raise RuntimeError("init exploded after starting a Manager")


class GetLogRaisesExecutor(ManagerExecutor):
    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        raise RuntimeError("get_task_log exploded")


class EndRaisesExecutor(ManagerExecutor):
    def end(self) -> None:
        type(self).ended += 1
        raise RuntimeError("end exploded")


class EndNotImplementedExecutor(ManagerExecutor):
    def end(self) -> None:
        type(self).ended += 1
        raise NotImplementedError


class GetLogHangsExecutor(ManagerExecutor):
    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        release.wait(60)
        return ["released"], []


class EndHangsExecutor(ManagerExecutor):
    def end(self) -> None:
        type(self).ended += 1
        release.wait(60)


class InitHangsExecutor(CountingExecutor):
    """Starts a Manager, then blocks in ``__init__``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._manager = multiprocessing.Manager()
        release.wait(60)


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
