"""
Which reader answers for an executor class: its own classmethod, or a registered reader.

An executor class reads logs without an instance in one of two ways:

* natively, with a classmethod :data:`CLASS_READER_ATTRIBUTE` answering like ``get_task_log``;
* through a :class:`ReaderRegistration`: added in code with :meth:`ReaderRegistry.register`, given
  as ``builtins`` (``module:attribute`` of a registration: the pipeline gives the ones this package
  ships), or shipped by another package under the
  :data:`ENTRY_POINT_GROUP` entry-point group.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from airflow_executor_logs.executors.reader_protocol import ReaderRegistration, StreamingTaskLog, as_streaming

if TYPE_CHECKING:
    from airflow_executor_logs.executors.reader_protocol import ReadContext
    from airflow_executor_logs.executors.resolution import ResolvedExecutor

log = logging.getLogger(__name__)

__all__ = [
    "CLASS_READER_ATTRIBUTE",
    "ENTRY_POINT_GROUP",
    "FoundReader",
    "ReadPath",
    "ReaderRegistry",
    "class_path",
]

#: Name of the classmethod an executor class defines to read logs without an instance.
CLASS_READER_ATTRIBUTE = "class_get_task_log"
#: Entry-point group under which other packages ship :class:`ReaderRegistration` objects.
ENTRY_POINT_GROUP = "airflow_executor_logs.readers"
ReadCall = Callable[["ResolvedExecutor", Any, int, "ReadContext"], StreamingTaskLog]


@dataclass(frozen=True)
class FoundReader:
    """
    The reader for one executor class, ready to call as ``read(executor, ti, try_number, context)``.

    It answers in the one shape, ``(messages, streams)``: a reader of the list form is adapted here,
    once (:func:`~.reader_protocol.as_streaming`).
    """

    name: str
    read: ReadCall
    keeps_deadline: bool = False


@dataclass(frozen=True)
class ReadPath:
    """
    How a running task's log is read for one executor class (:meth:`ReaderRegistry.read_path`).

    ``kind`` is :attr:`READER` (a class-level reader, ``reader``), :attr:`NOTHING` (the class does not
    override ``get_task_log``: nothing is built, nothing is read) or :attr:`SHORT_LIVED` (a short-lived
    executor, if ``[executor_logs] fallback_enabled``).
    """

    READER = "class-level reader"
    NOTHING = "nothing to build"
    SHORT_LIVED = "short-lived executor"

    kind: str
    reader: FoundReader | None = None


def class_path(cls: type) -> str:
    """The ``module.QualName`` path a registration names a class by."""
    return f"{cls.__module__}.{cls.__qualname__}"


class ReaderRegistry:
    """Map from executor class path to its reader. Thread-safe; shipped readers load on first use."""

    def __init__(self, entry_point_group: str | None = ENTRY_POINT_GROUP, builtins: Iterable[str] = ()) -> None:
        self._entry_point_group = entry_point_group
        self._builtins = tuple(builtins)
        self._registrations: dict[str, ReaderRegistration] = {}
        self._ready: dict[str, FoundReader] = {}
        self._builtins_loaded = not self._builtins
        self._entry_points_loaded = entry_point_group is None
        self._lock = threading.Lock()
        # Held while readers are imported, which takes seconds on a cold API worker: a concurrent
        # find() must wait for the registrations, not see none and fall back to building the executor.
        self._load_lock = threading.Lock()

    def register(self, registration: ReaderRegistration) -> None:
        """Add (or replace) the reader for ``registration.executor``."""
        _check_reader(registration)
        with self._lock:
            self._registrations[registration.executor] = registration
            self._ready.pop(registration.executor, None)

    def unregister(self, executor: str | type) -> None:
        path = executor if isinstance(executor, str) else class_path(executor)
        with self._lock:
            self._registrations.pop(path, None)
            self._ready.pop(path, None)

    def find(self, executor_cls: type) -> FoundReader | None:
        """
        The reader for ``executor_cls``: its native classmethod, an exact registration, or a registration
        for a base class that declared ``include_subclasses``, each only if its ``applies_to`` accepts the
        class. ``None`` when none applies.
        """
        native = _native_reader(executor_cls)
        if native is not None:
            return native
        self._load_builtins()
        found = self._lookup(executor_cls, exact_only=True)
        if found is not None:
            return found  # no need to scan every installed package's entry points
        self._load_entry_points()
        return self._lookup(executor_cls, exact_only=False)

    def read_path(self, executor: ResolvedExecutor) -> ReadPath:
        """How ``executor``'s running tasks' logs are read; raises what :meth:`find` raises (a reader factory's)."""
        reader = self.find(executor.executor_cls)
        if reader is not None:
            return ReadPath(ReadPath.READER, reader)
        return ReadPath(ReadPath.SHORT_LIVED if executor.overrides_get_task_log() else ReadPath.NOTHING)

    def _lookup(self, executor_cls: type, *, exact_only: bool) -> FoundReader | None:
        with self._lock:
            registration = self._registrations.get(class_path(executor_cls))
        if registration is not None and not _applies(registration, executor_cls):
            registration = None
        if registration is None and not exact_only:
            for base in executor_cls.__mro__[1:]:
                with self._lock:
                    inherited = self._registrations.get(class_path(base))
                if inherited is not None and inherited.include_subclasses and _applies(inherited, executor_cls):
                    registration = inherited
                    break
        if registration is None:
            return None
        with self._lock:
            ready = self._ready.get(registration.executor)
            if ready is None:
                ready = self._ready[registration.executor] = _prepare(registration)
            return ready

    def _load_builtins(self) -> None:
        def load() -> None:
            for target in self._builtins:
                module, _, attribute = target.partition(":")
                self._add_default(getattr(importlib.import_module(module), attribute), target)

        self._load_once("_builtins_loaded", load)

    def _load_entry_points(self) -> None:
        def load() -> None:
            for entry_point in entry_points(group=self._entry_point_group or ""):
                try:
                    loaded = entry_point.load()
                except Exception as err:
                    _unusable(entry_point.value, f"cannot be imported: {type(err).__name__}: {err}")
                    continue
                self._add_default(loaded, entry_point.value)

        self._load_once("_entry_points_loaded", load)

    def _load_once(self, done: str, load: Callable[[], None]) -> None:
        """Run ``load`` once per registry; concurrent callers wait for it rather than see it half done."""
        if getattr(self, done):
            return
        with self._load_lock:
            if getattr(self, done):
                return
            try:
                load()
            finally:
                setattr(self, done, True)

    def _add_default(self, loaded: object, source: str) -> None:
        """Register what a module or entry point ships, unless code registered that class already."""
        items = loaded if isinstance(loaded, (list, tuple)) else [loaded]
        for item in items:
            if not isinstance(item, ReaderRegistration):
                _unusable(source, f"gave {item!r}, not a ReaderRegistration")
                continue
            try:
                _check_reader(item)
            except TypeError as err:
                _unusable(source, str(err))
                continue
            with self._lock:
                self._registrations.setdefault(item.executor, item)


def _applies(registration: ReaderRegistration, executor_cls: type) -> bool:
    """Whether ``registration`` serves ``executor_cls`` (its ``applies_to`` is asked outside the registry's lock)."""
    return registration.applies_to is None or bool(registration.applies_to(executor_cls))


def _unusable(source: str, reason: str) -> None:
    log.error("Executor log reader %s is unusable and was skipped: %s", source, reason)


def _takes(callable_: Callable[..., Any], count: int) -> bool:
    try:
        inspect.signature(callable_).bind(*range(count))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): trust it
        return True
    return True


def _check_reader(registration: ReaderRegistration) -> None:
    reader = registration.reader
    if reader is None:
        return  # a factory: checked when the pipeline builds its reader
    if not callable(reader) or not (_takes(reader, 4) or _takes(reader, 3)):
        raise TypeError(
            f"reader {reader!r} for {registration.executor} must be called as "
            "reader(executor, ti, try_number, context) (or, the 0.1 form, reader(executor_cls, ti, try_number))"
        )


def _prepare(registration: ReaderRegistration) -> FoundReader:
    """A callable reader for ``registration``: built from its factory, or adapted from the 0.1 form."""
    reader: Any = registration.factory() if registration.factory is not None else registration.reader
    name = getattr(reader, "__name__", None) or type(reader).__name__
    if _takes(reader, 4):
        return FoundReader(name, reader, keeps_deadline=registration.keeps_deadline)

    def read_legacy(executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext) -> StreamingTaskLog:
        return as_streaming(reader(executor.executor_cls, ti, try_number))

    return FoundReader(name, read_legacy, keeps_deadline=registration.keeps_deadline)


def _native_reader(executor_cls: type) -> FoundReader | None:
    """
    The class's own classmethod, if it is at least as specific as its ``get_task_log``.

    A subclass that overrides ``get_task_log`` below the class that defined the classmethod reads
    logs differently, so the inherited classmethod no longer describes it.
    """
    definer = _defining_class(executor_cls, CLASS_READER_ATTRIBUTE)
    if definer is None:
        return None
    log_definer = _defining_class(executor_cls, "get_task_log")
    mro = executor_cls.__mro__
    if log_definer is not None and mro.index(log_definer) < mro.index(definer):
        return None  # get_task_log is overridden nearer to the class than the classmethod
    method = getattr(executor_cls, CLASS_READER_ATTRIBUTE)

    def read_natively(executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext) -> StreamingTaskLog:
        return as_streaming(method(ti, try_number))

    return FoundReader(f"{executor_cls.__qualname__}.{CLASS_READER_ATTRIBUTE}", read_natively)


def _defining_class(cls: type, attribute: str) -> type | None:
    return next((klass for klass in cls.__mro__ if attribute in vars(klass)), None)
