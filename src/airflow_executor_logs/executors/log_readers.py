"""
The class-level log reader protocol, and the registry of readers for classes we don't own.

An executor class can answer ``get_task_log`` without an instance in two ways:

* natively, with a classmethod named :data:`CLASS_READER_ATTRIBUTE`;
* through a :class:`ReaderRegistration`, registered in code with :func:`register_reader` or shipped
  by a package under the :data:`ENTRY_POINT_GROUP` entry-point group.

Either returns the same ``(messages, log_chunks)`` tuple as ``BaseExecutor.get_task_log``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeAlias

log = logging.getLogger(__name__)

#: Name of the classmethod an executor class defines to read logs without an instance.
CLASS_READER_ATTRIBUTE = "class_get_task_log"
#: Entry-point group under which packages ship :class:`ReaderRegistration` objects.
ENTRY_POINT_GROUP = "airflow_executor_logs.readers"

TaskLog: TypeAlias = tuple[list[str], list[str]]
#: ``reader(executor_cls, ti, try_number) -> (messages, log_chunks)``
ClassLogReader: TypeAlias = Callable[[type, Any, int], TaskLog]


@dataclass(frozen=True)
class ReaderRegistration:
    """
    A log reader for one executor class, named by import path so registering imports nothing.

    ``include_subclasses`` must be set deliberately: a subclass may build its clients differently
    (AwsEksExecutor subclasses KubernetesExecutor), and a reader that does not know that would read
    from the wrong place.
    """

    executor: str
    reader: ClassLogReader
    include_subclasses: bool = False


def class_path(cls: type) -> str:
    """The ``module.QualName`` path a registration names a class by."""
    return f"{cls.__module__}.{cls.__qualname__}"


class ReaderRegistry:
    """Thread-safe map from executor class path to its reader; entry points load on first use."""

    def __init__(self, entry_point_group: str | None = ENTRY_POINT_GROUP, builtins: Iterable[str] = ()) -> None:
        self._entry_point_group = entry_point_group
        self._registrations: dict[str, ReaderRegistration] = {}
        self._entry_points_loaded = entry_point_group is None
        self._builtins = tuple(builtins)
        self._builtins_loaded = not self._builtins
        self._lock = threading.Lock()
        # Held while readers are imported, which takes seconds on a cold API worker: a concurrent
        # find() must wait for the registrations, not see none and fall back to building the executor.
        self._load_lock = threading.Lock()

    def register(self, registration: ReaderRegistration) -> None:
        """Add (or replace) the reader for ``registration.executor``."""
        with self._lock:
            self._registrations[registration.executor] = registration

    def unregister(self, executor: str | type) -> None:
        with self._lock:
            self._registrations.pop(executor if isinstance(executor, str) else class_path(executor), None)

    def find(self, executor_cls: type) -> ClassLogReader | None:
        """
        The reader for ``executor_cls``: a native classmethod, an exact registration, or a registration
        for a base class that declared ``include_subclasses``. ``None`` when none applies.
        """
        native = _native_reader(executor_cls)
        if native is not None:
            return native
        self._load_builtins()
        with self._lock:
            exact = self._registrations.get(class_path(executor_cls))
        if exact is not None:
            return exact.reader  # no need to scan every installed package's entry points
        self._load_entry_points()
        with self._lock:
            exact = self._registrations.get(class_path(executor_cls))
            if exact is not None:
                return exact.reader
            for base in executor_cls.__mro__[1:]:
                inherited = self._registrations.get(class_path(base))
                if inherited is not None and inherited.include_subclasses:
                    return inherited.reader
        return None

    def _load_builtins(self) -> None:
        """Register the readers this package ships, by ``module:attribute``, once."""
        if self._builtins_loaded:
            return
        with self._load_lock:
            if self._builtins_loaded:
                return
            try:
                for target in self._builtins:
                    module, _, attribute = target.partition(":")
                    self._add_defaults(getattr(importlib.import_module(module), attribute))
            finally:
                self._builtins_loaded = True

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        with self._load_lock:
            if self._entry_points_loaded:
                return
            try:
                for entry_point in entry_points(group=self._entry_point_group or ""):
                    try:
                        loaded = entry_point.load()
                    except Exception:
                        log.exception("Cannot load executor log reader entry point %s", entry_point.value)
                        continue
                    self._add_defaults(loaded)
            finally:
                self._entry_points_loaded = True

    def _add_defaults(self, loaded: object) -> None:
        """Register what a module or entry point provides, unless code registered that class already."""
        for registration in _as_registrations(loaded):
            with self._lock:
                self._registrations.setdefault(registration.executor, registration)


def _as_registrations(loaded: object) -> Iterable[ReaderRegistration]:
    if isinstance(loaded, ReaderRegistration):
        return [loaded]
    if isinstance(loaded, (list, tuple)) and all(isinstance(item, ReaderRegistration) for item in loaded):
        return loaded
    log.error("Executor log reader entry point gave %r, not a ReaderRegistration", loaded)
    return []


def _native_reader(executor_cls: type) -> ClassLogReader | None:
    """
    The class's own classmethod, if it is at least as specific as its ``get_task_log``.

    A subclass that overrides ``get_task_log`` below the class that defined the classmethod reads
    logs differently, so the inherited classmethod no longer describes it.
    """
    definer = _defining_class(executor_cls, CLASS_READER_ATTRIBUTE)
    if definer is None:
        return None
    log_definer = _defining_class(executor_cls, "get_task_log")
    if log_definer is not None and log_definer is not definer and issubclass(log_definer, definer):
        return None
    method = getattr(executor_cls, CLASS_READER_ATTRIBUTE)

    def read_natively(cls: type, ti: Any, try_number: int) -> TaskLog:
        messages, logs = method(ti, try_number)
        return messages, logs

    return read_natively


def _defining_class(cls: type, attribute: str) -> type | None:
    return next((klass for klass in cls.__mro__ if attribute in vars(klass)), None)


#: Readers shipped with this package. They are also declared as entry points (for discovery by
#: tools); registering them directly spares the first read a scan of every installed package.
BUILTIN_READERS = ("airflow_executor_logs.executors.kubernetes_reader:REGISTRATION",)

default_registry = ReaderRegistry(builtins=BUILTIN_READERS)


def register_reader(
    executor: str | type, reader: ClassLogReader, *, include_subclasses: bool = False
) -> ReaderRegistration:
    """Register ``reader`` for ``executor`` (a class or its import path) in the default registry."""
    registration = ReaderRegistration(
        executor=executor if isinstance(executor, str) else class_path(executor),
        reader=reader,
        include_subclasses=include_subclasses,
    )
    default_registry.register(registration)
    return registration


def find_reader(executor_cls: type) -> ClassLogReader | None:
    """The class-level reader for ``executor_cls`` from the default registry, if any."""
    return default_registry.find(executor_cls)
