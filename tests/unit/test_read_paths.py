"""Which path a read takes: class-level reader, nothing at all, or a short-lived executor."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from unittest import mock

import pytest

from airflow_executor_logs.executors.log_readers import register_reader
from airflow_executor_logs.executors.task_log import read_running_task_log
from tests.support import fake_executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.processes import child_pids, new_children
from tests.support.task_instances import fake_ti


@pytest.fixture(autouse=True)
def _all_fakes_configured() -> Iterator[None]:
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield


def test_reader_path_never_instantiates_the_class() -> None:
    before = child_pids()
    constructed = fx.constructed.get("NativeReaderExecutor", 0)
    with mock.patch.object(multiprocessing, "Manager", side_effect=AssertionError("Manager started")):
        result = read_running_task_log(fake_ti("NativeReaderExecutor", task_id="t1"), 4)
    assert result == (["class-level read of t1"], ["native line try 4"])
    assert fx.constructed.get("NativeReaderExecutor", 0) == constructed
    assert not new_children(before)


def test_registered_reader_is_used_instead_of_building() -> None:
    from airflow_executor_logs.executors.log_readers import default_registry

    def reader(cls: type, ti: object, try_number: int) -> tuple[list[str], list[str]]:
        return ["registered"], ["ok"]

    register_reader(fx.ManagerExecutor, reader)
    try:
        constructed = fx.constructed.get("ManagerExecutor", 0)
        assert read_running_task_log(fake_ti("ManagerExecutor"), 1) == (["registered"], ["ok"])
        assert fx.constructed.get("ManagerExecutor", 0) == constructed
    finally:
        default_registry.unregister(fx.ManagerExecutor)


def test_executor_without_override_is_never_built() -> None:
    constructed = fx.constructed.get("NoOverrideExecutor", 0)
    assert read_running_task_log(fake_ti("NoOverrideExecutor"), 1) == ([], [])
    assert fx.constructed.get("NoOverrideExecutor", 0) == constructed


@pytest.mark.parametrize(
    "executor",
    [
        "airflow.executors.local_executor.LocalExecutor",
        "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    ],
)
def test_core_executors_without_override_are_never_built(executor: str) -> None:
    pytest.importorskip(executor.rsplit(".", 1)[0])
    with conf_vars({("core", "executor"): executor}):
        cls = __import__(executor.rsplit(".", 1)[0], fromlist=["x"]).__dict__[executor.rsplit(".", 1)[1]]
        with mock.patch.object(cls, "__init__", side_effect=AssertionError("built")):
            assert read_running_task_log(fake_ti(None), 1) == ([], [])


def test_kubernetes_executor_is_never_built() -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    with (
        conf_vars({("core", "executor"): "KubernetesExecutor"}),
        mock.patch.object(KubernetesExecutor, "__init__", side_effect=AssertionError("built")) as init,
        mock.patch.object(multiprocessing, "Manager", side_effect=AssertionError("Manager started")),
    ):
        messages, _ = read_running_task_log(fake_ti("KubernetesExecutor"), 1)
    init.assert_not_called()
    assert messages  # the Kubernetes reader answered (here: it cannot reach a cluster)


def test_subclass_without_its_own_reader_takes_the_fallback() -> None:
    constructed = fx.constructed.get("OverridesBelowNativeExecutor", 0)
    assert read_running_task_log(fake_ti("OverridesBelowNativeExecutor"), 1) == (
        ["subclass instance read"],
        [],
    )
    assert fx.constructed.get("OverridesBelowNativeExecutor", 0) == constructed + 1


def test_unknown_executor_is_a_message_in_the_log_stream() -> None:
    messages, logs = read_running_task_log(fake_ti("DefinitelyNotConfigured"), 1)
    assert messages == []  # nothing claims a pod, so the served-logs fetch still happens
    notice = json.loads(logs[0])
    assert notice["level"] == "error"
    assert "DefinitelyNotConfigured" in notice["event"]


def test_a_failing_reader_is_a_message_not_an_exception() -> None:
    from airflow_executor_logs.executors.log_readers import default_registry

    def reader(cls: type, ti: object, try_number: int) -> tuple[list[str], list[str]]:
        raise ValueError("reader broke")

    register_reader(fx.CountingExecutor, reader)
    try:
        _messages, logs = read_running_task_log(fake_ti("CountingExecutor"), 1)
    finally:
        default_registry.unregister(fx.CountingExecutor)
    assert "ValueError: reader broke" in json.loads(logs[0])["event"]
