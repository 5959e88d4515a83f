"""Which reader answers for a class: native classmethods, registrations, shipped readers, entry points."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint
from typing import Any
from unittest import mock

import pytest

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors import reader_registry
from airflow_executor_logs.executors.log_pipeline import BUILTIN_READERS
from airflow_executor_logs.executors.reader_protocol import ReadContext, ReaderRegistration, TextStreams, to_task_log
from airflow_executor_logs.executors.reader_registry import FoundReader, ReaderRegistry, class_path
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.executors.resolution import ResolvedExecutor
from airflow_executor_logs.metrics import Metrics
from airflow_executor_logs_testing import executors as fx
from tests.support.task_instances import fake_ti


def _legacy_reader(tag: str) -> Any:
    def read(executor_cls: type, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        return [f"{tag}:{executor_cls.__name__}"], [f"{ti.task_id}/{try_number}"]

    return read


def _call(found: FoundReader | None, cls: type, try_number: int = 1) -> Any:
    assert found is not None
    executor = ResolvedExecutor(name=mock.Mock(), executor_cls=cls)
    context = ReadContext(deadline=Deadline(5), settings=Settings(), metrics=Metrics())
    return found.read(executor, fake_ti(), try_number, context)


def _registry(group: str | None = None) -> ReaderRegistry:
    return ReaderRegistry(entry_point_group=group, builtins=())


def test_native_classmethod_is_used() -> None:
    found = _registry().find(fx.NativeReaderExecutor)
    assert found is not None
    answer = _call(found, fx.NativeReaderExecutor, 3)
    assert isinstance(answer[1], TextStreams)  # the list form, adapted here once
    assert to_task_log(answer) == (["class-level read of task"], ["native line try 3"])


def test_native_reader_is_inherited_by_a_subclass_that_changes_nothing() -> None:
    assert _registry().find(fx.InheritsNativeExecutor) is not None


def test_native_reader_does_not_cover_a_subclass_overriding_get_task_log() -> None:
    assert _registry().find(fx.OverridesBelowNativeExecutor) is None


def test_native_reader_does_not_cover_a_class_whose_mixin_overrides_get_task_log() -> None:
    """``class X(LogMixin, Base)``: the mixin's get_task_log comes first in the MRO, not Base's classmethod."""

    class LogMixin:
        def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
            return ["mixin"], []

    class WithMixin(LogMixin, fx.NativeReaderExecutor):
        pass

    assert _registry().find(WithMixin) is None


def test_a_reader_of_the_old_signature_is_adapted() -> None:
    registry = _registry()
    registry.register(ReaderRegistration(class_path(fx.CountingExecutor), _legacy_reader("old")))
    found = registry.find(fx.CountingExecutor)
    assert found is not None
    answer = _call(found, fx.CountingExecutor)
    assert isinstance(answer[1], TextStreams)
    assert to_task_log(answer) == (["old:CountingExecutor"], ["task/1"])


def test_a_reader_of_the_protocol_streams() -> None:
    seen: list[tuple[Any, ...]] = []

    def read(executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext) -> Any:
        seen.append((executor.executor_cls, ti.task_id, try_number, context.settings.read_timeout))
        return ["streamed"], [iter(["a", "b"])]

    registry = _registry()
    registry.register(ReaderRegistration(class_path(fx.CountingExecutor), read))
    found = registry.find(fx.CountingExecutor)
    assert found is not None
    messages, streams = _call(found, fx.CountingExecutor, 2)
    assert (messages, [list(stream) for stream in streams]) == (["streamed"], [["a", "b"]])
    assert seen == [(fx.CountingExecutor, "task", 2, Settings().read_timeout)]


def test_a_factory_builds_one_reader_per_registry() -> None:
    built: list[object] = []

    class StatefulReader:
        def __init__(self) -> None:
            built.append(self)

        def __call__(self, executor: Any, ti: Any, try_number: int, context: Any) -> Any:
            return [f"reader {built.index(self)}"], []

    registration = ReaderRegistration(class_path(fx.CountingExecutor), factory=StatefulReader)
    first, second = _registry(), _registry()
    first.register(registration)
    second.register(registration)
    assert _call(first.find(fx.CountingExecutor), fx.CountingExecutor)[0] == ["reader 0"]
    assert _call(first.find(fx.CountingExecutor), fx.CountingExecutor)[0] == ["reader 0"]
    assert _call(second.find(fx.CountingExecutor), fx.CountingExecutor)[0] == ["reader 1"]
    assert len(built) == 2


def test_a_reader_with_the_wrong_signature_is_refused() -> None:
    with pytest.raises(TypeError, match=r"reader\(executor, ti, try_number, context\)"):
        _registry().register(ReaderRegistration("a.B", reader=lambda ti: ([], [])))


def test_registration_does_not_cover_subclasses_unless_declared() -> None:
    registry = _registry()
    registry.register(ReaderRegistration(class_path(fx.CountingExecutor), _legacy_reader("base")))
    assert registry.find(fx.ManagerExecutor) is None

    registry.register(
        ReaderRegistration(class_path(fx.CountingExecutor), _legacy_reader("base"), include_subclasses=True)
    )
    assert _call(registry.find(fx.ManagerExecutor), fx.ManagerExecutor)[0] == ["base:ManagerExecutor"]


def test_exact_registration_wins_over_an_inherited_one() -> None:
    registry = _registry()
    registry.register(
        ReaderRegistration(class_path(fx.CountingExecutor), _legacy_reader("base"), include_subclasses=True)
    )
    registry.register(ReaderRegistration(class_path(fx.ManagerExecutor), _legacy_reader("own")))
    assert _call(registry.find(fx.ManagerExecutor), fx.ManagerExecutor)[0] == ["own:ManagerExecutor"]


def test_a_registration_serves_only_the_classes_its_applies_to_accepts() -> None:
    asked: list[type] = []

    def applies_to(cls: type) -> bool:
        asked.append(cls)
        return cls is not fx.ManagerExecutor

    registry = _registry()
    registry.register(
        ReaderRegistration(
            class_path(fx.CountingExecutor), _legacy_reader("base"), include_subclasses=True, applies_to=applies_to
        )
    )
    assert _call(registry.find(fx.CountingExecutor), fx.CountingExecutor)[0] == ["base:CountingExecutor"]
    assert registry.find(fx.ManagerExecutor) is None  # a refused subclass resolves as if unregistered
    assert asked == [fx.CountingExecutor, fx.ManagerExecutor]

    registry.register(
        ReaderRegistration(class_path(fx.CountingExecutor), _legacy_reader("base"), applies_to=lambda cls: False)
    )
    assert registry.find(fx.CountingExecutor) is None  # the named class itself too


SHIPPED: list[ReaderRegistration] = []


def test_entry_points_are_loaded_once_and_code_registrations_win() -> None:
    shipped = ReaderRegistration(class_path(fx.CountingExecutor), _legacy_reader("shipped"))
    code = ReaderRegistration(class_path(fx.ProcessExecutor), _legacy_reader("code"))
    shipped_too = ReaderRegistration(class_path(fx.ProcessExecutor), _legacy_reader("shipped"))
    entry_point = EntryPoint(name="x", value=f"{__name__}:SHIPPED", group="g")
    registry = _registry("g")
    registry.register(code)
    with (
        mock.patch.object(reader_registry, "entry_points", return_value=[entry_point]) as found,
        mock.patch.dict(globals(), {"SHIPPED": [shipped, shipped_too]}),
    ):
        counting = registry.find(fx.CountingExecutor)
        registry.find(fx.ManagerExecutor)
        process = registry.find(fx.ProcessExecutor)
    assert found.call_count == 1
    assert _call(counting, fx.CountingExecutor)[0] == ["shipped:CountingExecutor"]
    assert _call(process, fx.ProcessExecutor)[0] == ["code:ProcessExecutor"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("no_such_module_anywhere:THING", "cannot be imported: ModuleNotFoundError"),
        (f"{__name__}:NOT_A_REGISTRATION", "not a ReaderRegistration"),
        (f"{__name__}:WRONG_SIGNATURE", "must be called as reader(executor, ti, try_number, context)"),
    ],
    ids=["unimportable", "not-a-registration", "wrong-signature"],
)
def test_a_bad_entry_point_is_named_once_and_never_breaks_a_read(
    value: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = EntryPoint(name="good", value=f"{__name__}:SHIPPED", group="g")
    bad = EntryPoint(name="bad", value=value, group="g")
    registry = _registry("g")
    shipped = [ReaderRegistration(class_path(fx.CountingExecutor), _legacy_reader("good"))]
    with (
        caplog.at_level(logging.ERROR, logger=reader_registry.__name__),
        mock.patch.object(reader_registry, "entry_points", return_value=[bad, good]),
        mock.patch.dict(globals(), {"SHIPPED": shipped}),
    ):
        for _ in range(3):
            assert registry.find(fx.ManagerExecutor) is None
            assert _call(registry.find(fx.CountingExecutor), fx.CountingExecutor)[0] == ["good:CountingExecutor"]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1, [record.getMessage() for record in errors]
    assert value in errors[0].getMessage()
    assert reason in errors[0].getMessage()
    assert errors[0].exc_info is None  # one clear line, no traceback


NOT_A_REGISTRATION = object()
WRONG_SIGNATURE = ReaderRegistration.__new__(ReaderRegistration)
object.__setattr__(WRONG_SIGNATURE, "executor", "some.Executor")
object.__setattr__(WRONG_SIGNATURE, "reader", lambda: None)
object.__setattr__(WRONG_SIGNATURE, "factory", None)
object.__setattr__(WRONG_SIGNATURE, "include_subclasses", False)
object.__setattr__(WRONG_SIGNATURE, "keeps_deadline", False)


def test_the_kubernetes_reader_ships_as_a_builtin_not_an_entry_point() -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.kubernetes.reader import KubernetesLogReader

    points = reader_registry.entry_points(group=reader_registry.ENTRY_POINT_GROUP)
    assert not [ep for ep in points if ep.value.startswith("airflow_executor_logs.")]
    registry = ReaderRegistry(entry_point_group=None, builtins=BUILTIN_READERS)
    with mock.patch.object(reader_registry, "entry_points", side_effect=AssertionError("scanned")):
        found = registry.find(KubernetesExecutor)
    assert found is not None
    assert isinstance(found.read, KubernetesLogReader)
    assert found.keeps_deadline


def test_the_kubernetes_reader_does_not_cover_subclasses() -> None:
    """AwsEksExecutor subclasses KubernetesExecutor but builds its client its own way."""
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    class AwsEksLikeExecutor(KubernetesExecutor):
        pass

    assert ReaderRegistry(entry_point_group=None, builtins=BUILTIN_READERS).find(AwsEksLikeExecutor) is None


def test_concurrent_first_lookups_wait_for_slow_reader_imports() -> None:
    """On a cold API worker the reader import takes seconds; no lookup may miss it meanwhile."""
    import importlib
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    real_import = importlib.import_module
    started = threading.Event()

    def slow_import(name: str) -> object:
        started.set()
        time.sleep(0.5)
        return real_import(name)

    registry = ReaderRegistry(entry_point_group=None, builtins=BUILTIN_READERS)
    with (
        mock.patch.object(reader_registry.importlib, "import_module", side_effect=slow_import),
        ThreadPoolExecutor(8) as pool,
    ):
        futures = [pool.submit(registry.find, KubernetesExecutor) for _ in range(8)]
        assert started.wait(5)
        found = [future.result(10) for future in futures]
    assert all(item is not None for item in found)
    assert len({id(item) for item in found}) == 1  # one reader, built once
