"""The class-level reader protocol: native classmethods, registrations, entry points, subclasses."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any
from unittest import mock

import pytest

from airflow_executor_logs.executors import log_readers
from airflow_executor_logs.executors.log_readers import (
    ReaderRegistration,
    ReaderRegistry,
    class_path,
    find_reader,
)
from tests.support import fake_executors as fx
from tests.support.task_instances import fake_ti


def _reader(tag: str) -> log_readers.ClassLogReader:
    def read(executor_cls: type, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        return [f"{tag}:{executor_cls.__name__}"], [f"{ti.task_id}/{try_number}"]

    return read


def test_native_classmethod_is_used() -> None:
    reader = find_reader(fx.NativeReaderExecutor)
    assert reader is not None
    assert reader(fx.NativeReaderExecutor, fake_ti(), 3) == (
        ["class-level read of task"],
        ["native line try 3"],
    )


def test_native_reader_is_inherited_by_a_subclass_that_changes_nothing() -> None:
    assert find_reader(fx.InheritsNativeExecutor) is not None


def test_native_reader_does_not_cover_a_subclass_overriding_get_task_log() -> None:
    assert find_reader(fx.OverridesBelowNativeExecutor) is None


def test_exact_registration() -> None:
    registry = ReaderRegistry(entry_point_group=None)
    registry.register(ReaderRegistration(class_path(fx.CountingExecutor), _reader("exact")))
    reader = registry.find(fx.CountingExecutor)
    assert reader is not None
    assert reader(fx.CountingExecutor, fake_ti(), 1) == (["exact:CountingExecutor"], ["task/1"])


def test_registration_does_not_cover_subclasses_unless_declared() -> None:
    registry = ReaderRegistry(entry_point_group=None)
    registry.register(ReaderRegistration(class_path(fx.CountingExecutor), _reader("base")))
    assert registry.find(fx.ManagerExecutor) is None

    registry.register(ReaderRegistration(class_path(fx.CountingExecutor), _reader("base"), include_subclasses=True))
    reader = registry.find(fx.ManagerExecutor)
    assert reader is not None
    assert reader(fx.ManagerExecutor, fake_ti(), 1)[0] == ["base:ManagerExecutor"]


def test_exact_registration_wins_over_an_inherited_one() -> None:
    registry = ReaderRegistry(entry_point_group=None)
    registry.register(ReaderRegistration(class_path(fx.CountingExecutor), _reader("base"), include_subclasses=True))
    registry.register(ReaderRegistration(class_path(fx.ManagerExecutor), _reader("own")))
    reader = registry.find(fx.ManagerExecutor)
    assert reader is not None
    assert reader(fx.ManagerExecutor, fake_ti(), 1)[0] == ["own:ManagerExecutor"]


def test_entry_points_are_loaded_once_and_code_registrations_win() -> None:
    shipped = ReaderRegistration(class_path(fx.CountingExecutor), _reader("shipped"))
    entry_point = EntryPoint(name="x", value="tests.unit.test_log_readers:SHIPPED", group="g")
    registry = ReaderRegistry(entry_point_group="g")
    registry.register(ReaderRegistration(class_path(fx.ProcessExecutor), _reader("code")))
    with (
        mock.patch.object(log_readers, "entry_points", return_value=[entry_point]) as found,
        mock.patch.dict(globals(), {"SHIPPED": [shipped]}),
    ):
        counting = registry.find(fx.CountingExecutor)
        registry.find(fx.ManagerExecutor)
    assert found.call_count == 1
    assert counting is not None
    assert counting(fx.CountingExecutor, fake_ti(), 1)[0] == ["shipped:CountingExecutor"]


def test_a_broken_entry_point_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    entry_point = EntryPoint(name="bad", value="no_such_module_anywhere:THING", group="g")
    registry = ReaderRegistry(entry_point_group="g")
    with mock.patch.object(log_readers, "entry_points", return_value=[entry_point]):
        assert registry.find(fx.CountingExecutor) is None
    assert "no_such_module_anywhere" in caplog.text


def test_kubernetes_reader_ships_through_the_installed_entry_point() -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.kubernetes_reader import read_kubernetes_task_log

    points = [ep for ep in log_readers.entry_points(group=log_readers.ENTRY_POINT_GROUP)]
    assert any(ep.value.startswith("airflow_executor_logs.executors.kubernetes_reader") for ep in points)
    assert ReaderRegistry().find(KubernetesExecutor) is read_kubernetes_task_log


def test_kubernetes_reader_does_not_cover_subclasses() -> None:
    """AwsEksExecutor subclasses KubernetesExecutor but builds its client its own way."""
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    class AwsEksLikeExecutor(KubernetesExecutor):
        pass

    assert ReaderRegistry().find(AwsEksLikeExecutor) is None


def test_builtin_readers_need_no_entry_point_scan() -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.kubernetes_reader import read_kubernetes_task_log

    registry = ReaderRegistry(builtins=log_readers.BUILTIN_READERS)
    with mock.patch.object(log_readers, "entry_points", side_effect=AssertionError("scanned")):
        assert registry.find(KubernetesExecutor) is read_kubernetes_task_log


def test_concurrent_first_lookups_wait_for_slow_reader_imports() -> None:
    """On a cold API worker the reader import takes seconds; no lookup may miss it meanwhile."""
    import importlib
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.kubernetes_reader import read_kubernetes_task_log

    real_import = importlib.import_module
    started = threading.Event()

    def slow_import(name: str) -> object:
        started.set()
        time.sleep(0.5)
        return real_import(name)

    registry = ReaderRegistry(builtins=log_readers.BUILTIN_READERS)
    with (
        mock.patch.object(log_readers.importlib, "import_module", side_effect=slow_import),
        ThreadPoolExecutor(8) as pool,
    ):
        futures = [pool.submit(registry.find, KubernetesExecutor) for _ in range(8)]
        assert started.wait(5)
        found = [future.result(10) for future in futures]
    assert found == [read_kubernetes_task_log] * 8
