"""
The AwsEksExecutor reader, on a double of the amazon provider's module (a ``KubernetesExecutor`` subclass whose
module names a client factory, as 9.39.0's does): which classes it serves, how it builds the client, and a
read through the pipeline on the loopback Kubernetes API. The real executor: tests/integration/test_aws_eks_parity.py.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.kubernetes.aws_eks import (
    AWS_EKS_EXECUTOR,
    AWS_EKS_MODULE,
    AwsEksLogReader,
    build_eks_client,
    reads_like_aws_eks,
)
from airflow_executor_logs.executors.kubernetes.reader import KubernetesLogReader
from airflow_executor_logs.executors.log_pipeline import BUILTIN_READERS, ExecutorLogPipeline
from airflow_executor_logs.executors.reader_protocol import Outcome
from airflow_executor_logs.executors.reader_registry import ReaderRegistry, class_path
from airflow_executor_logs_testing import FakeKubeAPI, serve_task_pod
from tests.support.airflow_state import conf_vars
from tests.support.task_instances import fake_ti

FACTORY_VARIABLE = "AIRFLOW__KUBERNETES_EXECUTOR__CLIENT_FACTORY"


class FactoryDouble:
    """The double's client factory (called with no argument): a client for ``kubeconfig``, or blocks."""

    kubeconfig: Path | None = None
    calls = 0
    gate: threading.Event | None = None

    @classmethod
    def reset(cls) -> None:
        cls.kubeconfig, cls.calls, cls.gate = None, 0, None


def client_factory_double() -> Any:
    from airflow.providers.cncf.kubernetes.kube_client import get_kube_client

    FactoryDouble.calls += 1
    if FactoryDouble.gate is not None:
        FactoryDouble.gate.wait(30)
    return get_kube_client(in_cluster=False, config_file=str(FactoryDouble.kubeconfig))


FACTORY_PATH = f"{__name__}.client_factory_double"


def _registry() -> ReaderRegistry:
    return ReaderRegistry(entry_point_group=None, builtins=BUILTIN_READERS)


@pytest.fixture
def eks_cls(monkeypatch: pytest.MonkeyPatch) -> Iterator[type]:
    """``AwsEksExecutor`` as 9.39.0 shapes it, in a module of the provider's name that names its factory."""
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    class AwsEksExecutor(KubernetesExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._ensure_client_factory()

        def _ensure_client_factory(self) -> None:
            os.environ.setdefault(FACTORY_VARIABLE, FACTORY_PATH)

        def start(self) -> None:
            super().start()

    AwsEksExecutor.__module__, AwsEksExecutor.__qualname__ = AWS_EKS_MODULE, "AwsEksExecutor"
    module = types.ModuleType(AWS_EKS_MODULE)
    module.AwsEksExecutor = AwsEksExecutor  # type: ignore[attr-defined]
    module._CLIENT_FACTORY_PATH = FACTORY_PATH  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, AWS_EKS_MODULE, module)
    monkeypatch.delenv(FACTORY_VARIABLE, raising=False)
    FactoryDouble.reset()
    assert class_path(AwsEksExecutor) == AWS_EKS_EXECUTOR
    yield AwsEksExecutor
    FactoryDouble.reset()


def test_aws_eks_is_served_by_the_kubernetes_reader_with_its_own_clients(eks_cls: type) -> None:
    found = _registry().find(eks_cls)
    assert found is not None
    assert isinstance(found.read, AwsEksLogReader)
    assert isinstance(found.read, KubernetesLogReader)
    assert not found.keeps_deadline  # its client build calls EKS under boto's timeouts: the guard holds it


def test_a_subclass_that_changes_nothing_of_the_read_is_served_too(eks_cls: type) -> None:
    class CompanyEksExecutor(eks_cls):  # type: ignore[misc,valid-type]
        def start(self) -> None:
            super().start()

    found = _registry().find(CompanyEksExecutor)
    assert found is not None
    assert isinstance(found.read, AwsEksLogReader)


@pytest.mark.parametrize(
    "attribute",
    [
        "get_task_log",
        "get_streaming_task_log",
        "_get_pod_namespace",
        "RUNNING_POD_LOG_LINES",
        "supports_task_instance_uuid",
        "__init__",
        "_ensure_client_factory",
    ],
)
def test_a_subclass_that_overrides_the_read_or_the_client_goes_to_the_fallback(eks_cls: type, attribute: str) -> None:
    subclass = type("CompanyEksExecutor", (eks_cls,), {attribute: getattr(eks_cls, attribute, None)})
    assert not reads_like_aws_eks(subclass)
    assert _registry().find(subclass) is None


def test_an_aws_eks_that_reads_differently_itself_goes_to_the_fallback(eks_cls: type) -> None:
    eks_cls.get_task_log = eks_cls.get_task_log  # type: ignore[method-assign]  # an override of its own
    assert _registry().find(eks_cls) is None


def test_an_aws_eks_whose_module_names_no_factory_goes_to_the_fallback(eks_cls: type) -> None:
    del sys.modules[AWS_EKS_MODULE]._CLIENT_FACTORY_PATH  # type: ignore[attr-defined]
    assert _registry().find(eks_cls) is None


def test_other_kubernetes_executor_subclasses_are_not_served(eks_cls: type) -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    class OtherKubernetesExecutor(KubernetesExecutor):
        pass

    registry = _registry()
    assert registry.find(OtherKubernetesExecutor) is None
    found = registry.find(KubernetesExecutor)
    assert found is not None
    assert type(found.read) is KubernetesLogReader


def test_the_client_is_built_by_the_executors_own_factory_with_retries_capped(
    eks_cls: type, fake_kubeconfig: Path
) -> None:
    FactoryDouble.kubeconfig = fake_kubeconfig
    api = build_eks_client(None)
    assert FactoryDouble.calls == 1
    assert api.api_client.configuration.host.startswith("http://127.0.0.1:")  # type: ignore[attr-defined]
    assert api.api_client.rest_client.pool_manager.connection_pool_kw["retries"].total == 1  # type: ignore[attr-defined]
    assert FACTORY_VARIABLE not in os.environ  # nothing process-wide was set


def test_a_different_configured_client_factory_is_refused_as_the_executor_refuses_it(
    eks_cls: type, fake_kubeconfig: Path
) -> None:
    FactoryDouble.kubeconfig = fake_kubeconfig
    with (
        conf_vars({("kubernetes_executor", "client_factory"): "somewhere.else"}),
        pytest.raises(ValueError, match=r"it is set to somewhere\.else"),
    ):
        build_eks_client(None)
    with conf_vars({("kubernetes_executor", "client_factory"): FACTORY_PATH}):  # what the executor sets
        build_eks_client(None)
    assert FactoryDouble.calls == 1


def test_each_eks_cluster_is_a_cluster_of_its_own() -> None:
    reader = AwsEksLogReader()
    with conf_vars({("aws_eks_executor", "cluster_name"): "one", ("aws_eks_executor", "region_name"): "eu-west-1"}):
        one = reader.cluster(None)
    reader = AwsEksLogReader()
    with conf_vars({("aws_eks_executor", "cluster_name"): "two"}):
        two = reader.cluster(None)
    assert one[1:3] == ("eks:one", "eu-west-1")
    assert two[1] == "eks:two"
    assert one != KubernetesLogReader().cluster(None)


@pytest.fixture
def eks_pipeline(eks_cls: type, fake_kube_api: FakeKubeAPI, fake_kubeconfig: Path) -> Iterator[ExecutorLogPipeline]:
    """The double configured as ``[core] executor``; its factory points at the loopback API (no kubeconfig else)."""
    FactoryDouble.kubeconfig = fake_kubeconfig
    overrides: dict[tuple[str, str], str | None] = {
        ("core", "executor"): AWS_EKS_EXECUTOR,
        ("kubernetes_executor", "namespace"): "default",
        ("kubernetes_executor", "in_cluster"): "False",
        ("kubernetes_executor", "config_file"): os.devnull,
    }
    with conf_vars(overrides):
        yield ExecutorLogPipeline(settings=Settings(read_timeout=2.0, fallback_enabled=False))


def test_a_read_goes_through_the_class_level_reader_with_one_client(
    eks_pipeline: ExecutorLogPipeline, fake_kube_api: FakeKubeAPI
) -> None:
    ti = fake_ti(AWS_EKS_EXECUTOR)
    serve_task_pod(fake_kube_api, ti, 1, ["from eks"])
    for _ in range(2):
        messages, logs = eks_pipeline.read(ti, 1)
        assert messages[-1] == "Found logs through kube API"  # no "fallback_enabled is off" refusal
        assert "from eks" in logs[0]
    assert FactoryDouble.calls == 1


def test_a_client_build_that_hangs_is_cut_at_the_deadline(
    eks_pipeline: ExecutorLogPipeline, fake_kube_api: FakeKubeAPI
) -> None:
    ti = fake_ti(AWS_EKS_EXECUTOR)
    serve_task_pod(fake_kube_api, ti, 1, ["from eks"])
    FactoryDouble.gate = threading.Event()
    try:
        answer = eks_pipeline.answer(ti, 1)
        assert answer.outcome is Outcome.TIMEOUT
        # Two clocks run out together: the pipeline's guard of this reader, and the client cache, which
        # builds on a thread of its own and gives up at the read's deadline. Either cut is right.
        assert any(
            cut in answer.report.detail
            for cut in ("AwsEksLogReader timed out after 2 s", "the Kubernetes client was not built within 2 s")
        ), answer.report.detail
    finally:
        FactoryDouble.gate.set()
