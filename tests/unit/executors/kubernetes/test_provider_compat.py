"""What the reader detects on the installed cncf-kubernetes provider, and the provider settings it reads."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any
from unittest import mock

import pytest
from packaging.version import Version

from airflow_executor_logs.executors.kubernetes.provider_compat import (
    CONF_REFRESH_SECONDS,
    ProviderSettings,
    first_message,
    labels_pods_with_ti_id,
    selector_builder,
    streams_natively,
)
from airflow_executor_logs_testing.kube_client import FakeClock
from tests.support.airflow_state import conf_vars
from tests.support.task_instances import fake_ti

PROVIDER = Version(version("apache-airflow-providers-cncf-kubernetes"))
CORE = Version(version("apache-airflow"))
SELECTOR = (
    "airflow-worker=7,dag_id=dag,kubernetes_executor=True,"
    "run_id=manual__2026-01-01T0000000000-daff4c10d,task_id=task,try_number=2"
)


def _kubernetes_executor() -> type:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    return KubernetesExecutor


def _streaming_executor() -> type:
    """An executor class that streams its logs itself, as the provider does from 10.20."""
    from airflow.executors.base_executor import BaseExecutor

    class Streaming(BaseExecutor):
        RUNNING_POD_LOG_LINES = 100

        def get_streaming_task_log(self, ti: Any, try_number: int) -> Any:
            return [], []

    return Streaming


class NotStreaming:
    """An executor class as providers before 10.20 define it."""

    RUNNING_POD_LOG_LINES = 100


# ------------------------------------------------------------------ detected on the installed provider


def test_the_installed_provider_streams_natively_from_10_20() -> None:
    assert streams_natively(_kubernetes_executor()) is (PROVIDER >= Version("10.20"))


def test_the_installed_provider_labels_pods_with_the_ti_id_from_10_24_on_core_3_4() -> None:
    expected = PROVIDER >= Version("10.24") and CORE.release >= (3, 4)
    assert labels_pods_with_ti_id(_kubernetes_executor()) is expected


def test_the_installed_providers_first_message() -> None:
    ti_without_host = fake_ti("KubernetesExecutor", hostname=None)
    with_host = first_message(_kubernetes_executor(), fake_ti("KubernetesExecutor"))
    assert with_host == "Attempting to fetch logs from pod worker-pod-1 through kube API"
    if PROVIDER >= Version("10.20"):
        assert (
            first_message(_kubernetes_executor(), ti_without_host)
            == "Attempting to fetch logs from pod through kube API"
        )
    else:
        assert first_message(_kubernetes_executor(), ti_without_host) == (
            "Attempting to fetch logs from pod None through kube API"
        )


def test_the_installed_providers_tail_length() -> None:
    with conf_vars({("kubernetes_executor", "running_pod_log_lines"): "250"}):
        tail = ProviderSettings().tail_lines(_kubernetes_executor(), None)
    assert tail == (250 if PROVIDER >= Version("10.20") else 100)


def test_the_selector_is_the_installed_providers() -> None:
    ti = fake_ti("KubernetesExecutor")
    selector = selector_builder()(_kubernetes_executor(), ti, 2)
    if labels_pods_with_ti_id(_kubernetes_executor()):
        from airflow.providers.cncf.kubernetes.executors.kubernetes_executor_types import TASK_INSTANCE_ID_LABEL

        assert selector == f"{SELECTOR},{TASK_INSTANCE_ID_LABEL}={ti.id}"
    else:
        assert selector == SELECTOR


# ------------------------------------------------------------------ detection on classes


def test_only_an_override_of_get_streaming_task_log_counts() -> None:
    from airflow.executors.base_executor import BaseExecutor

    assert streams_natively(_streaming_executor()) is True
    assert streams_natively(NotStreaming) is False
    assert streams_natively(BaseExecutor) is False  # core 3.4 defines it on BaseExecutor

    class Inherits(BaseExecutor):
        pass

    assert streams_natively(Inherits) is False


def test_first_message_words_it_as_the_provider_of_the_class_does() -> None:
    ti = fake_ti("KubernetesExecutor", hostname="")
    assert first_message(_streaming_executor(), ti) == "Attempting to fetch logs from pod through kube API"
    assert first_message(NotStreaming, ti) == "Attempting to fetch logs from pod  through kube API"


def test_pods_labelled_with_the_ti_id_only_when_the_class_says_so() -> None:
    class Labels:
        supports_task_instance_uuid = True

    assert (labels_pods_with_ti_id(Labels), labels_pods_with_ti_id(NotStreaming)) == (True, False)


# ------------------------------------------------------------------ settings


@pytest.fixture
def conf_get() -> Iterator[mock.MagicMock]:
    """``conf.get`` answering ``<key>@<team>``, recording each call."""
    from airflow.configuration import conf

    def answer(section: str, key: str, team_name: str | None = None, **kwargs: Any) -> str:
        return f"{key}@{team_name}"

    with mock.patch.object(conf, "get", side_effect=answer) as get:
        yield get


def test_a_setting_is_reused_for_a_few_seconds_then_read_again(conf_get: mock.MagicMock) -> None:
    clock = FakeClock()
    settings = ProviderSettings(clock)
    assert settings.get("namespace", None) == "namespace@None"
    clock.advance(CONF_REFRESH_SECONDS - 0.1)
    settings.get("namespace", None)
    assert conf_get.call_count == 1
    clock.advance(0.1)
    settings.get("namespace", None)
    assert conf_get.call_count == 2


def test_settings_are_kept_per_key_team_and_fallback(conf_get: mock.MagicMock) -> None:
    settings = ProviderSettings(FakeClock())
    assert settings.get("namespace", "team_a") == "namespace@team_a"
    assert settings.get("namespace", None) == "namespace@None"
    settings.get("in_cluster", None, fallback="")
    settings.get("in_cluster", None, fallback="x")
    for _ in range(3):
        settings.get("namespace", "team_a")
    assert conf_get.call_args_list == [
        mock.call("kubernetes_executor", "namespace", team_name="team_a"),
        mock.call("kubernetes_executor", "namespace"),  # no team: conf.get of cores without teams
        mock.call("kubernetes_executor", "in_cluster", fallback=""),
        mock.call("kubernetes_executor", "in_cluster", fallback="x"),
    ]


def test_a_setting_is_read_again_from_conf() -> None:
    clock = FakeClock()
    settings = ProviderSettings(clock)
    with conf_vars({("kubernetes_executor", "namespace"): "first"}):
        assert settings.get("namespace", None) == "first"
    with conf_vars({("kubernetes_executor", "namespace"): "second"}):
        assert settings.get("namespace", None) == "first"
        clock.advance(CONF_REFRESH_SECONDS)
        assert settings.get("namespace", None) == "second"


def test_the_tail_length_of_a_streaming_provider_comes_from_config() -> None:
    streaming = _streaming_executor()
    with conf_vars({("kubernetes_executor", "running_pod_log_lines"): "250"}):
        assert ProviderSettings().tail_lines(streaming, None) == 250
    with conf_vars({("kubernetes_executor", "running_pod_log_lines"): None}):
        assert ProviderSettings().tail_lines(streaming, None) == 100  # the class's default
    with (
        conf_vars({("kubernetes_executor", "running_pod_log_lines"): "0"}),
        pytest.raises(
            ValueError,
            match=r"^The \[kubernetes_executor\] running_pod_log_lines configuration must be greater than 0, got 0\.$",
        ),
    ):
        ProviderSettings().tail_lines(streaming, None)


def test_the_tail_length_of_an_older_provider_is_its_class_constant() -> None:
    with conf_vars({("kubernetes_executor", "running_pod_log_lines"): "0"}):
        assert ProviderSettings().tail_lines(NotStreaming, None) == 100


def test_the_namespace_is_the_pod_overrides_else_the_configured_one() -> None:
    from kubernetes.client import V1ObjectMeta, V1Pod

    settings = ProviderSettings()
    overridden = fake_ti(executor_config={"pod_override": V1Pod(metadata=V1ObjectMeta(namespace="team-ns"))})
    no_namespace = fake_ti(executor_config={"pod_override": V1Pod(metadata=V1ObjectMeta(name="p"))})
    no_metadata = fake_ti(executor_config={"pod_override": V1Pod()})
    with conf_vars({("kubernetes_executor", "namespace"): "configured"}):
        assert settings.namespace(overridden, None) == "team-ns"
        assert settings.namespace(no_namespace, None) == "configured"
        assert settings.namespace(no_metadata, None) == "configured"
        assert settings.namespace(fake_ti(executor_config=None), None) == "configured"


# ------------------------------------------------------------------ selectors


def test_selectors_are_built_once_per_task_try(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    real = PodGenerator.build_selector_for_k8s_executor_pod
    built: list[int] = []

    @functools.wraps(real)  # keeps the provider's signature, which the builder inspects
    def counting(**arguments: Any) -> str:
        built.append(arguments["try_number"])
        return real(**arguments)

    monkeypatch.setattr(PodGenerator, "build_selector_for_k8s_executor_pod", staticmethod(counting))
    selector = selector_builder()
    ti = fake_ti("KubernetesExecutor")
    assert selector(NotStreaming, ti, 2) == selector(NotStreaming, ti, 2) == SELECTOR
    assert selector(NotStreaming, ti, 3) == SELECTOR.replace("try_number=2", "try_number=3")
    assert built == [2, 3]


def test_the_selector_adds_the_ti_id_label_when_pods_carry_it() -> None:
    types = pytest.importorskip("airflow.providers.cncf.kubernetes.executors.kubernetes_executor_types")
    if not hasattr(types, "TASK_INSTANCE_ID_LABEL"):
        pytest.skip("this provider does not label pods with the task-instance id (before 10.24)")

    class Labels:
        supports_task_instance_uuid = True

    ti = fake_ti("KubernetesExecutor")
    assert selector_builder()(Labels, ti, 2) == f"{SELECTOR},{types.TASK_INSTANCE_ID_LABEL}={ti.id}"
