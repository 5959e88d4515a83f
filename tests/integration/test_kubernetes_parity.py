"""
Our reader and the installed provider's ``KubernetesExecutor`` give identical answers, in both forms.

The list form (``get_task_log``) is compared on every provider; the streaming form
(``get_streaming_task_log``, 10.20 and later) line for line where the provider has it. Runs on every
matrix cell and on the parity cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs_testing import FakeKubeAPI, serve_task_pod
from tests.support.airflow_state import conf_vars
from tests.support.kube import airflow_pointed_at
from tests.support.parity import same_answers
from tests.support.task_instances import fake_ti

pytestmark = pytest.mark.parity

Compare = Callable[[Any, int], tuple[Any, Any]]


def _materialized(answer: tuple[list[str], list[Any]]) -> tuple[list[str], list[list[str]]]:
    messages, streams = answer
    return list(messages), [list(stream) for stream in streams]


@pytest.fixture(params=["list", "streaming"])
def compare(request: pytest.FixtureRequest, fake_kube_api: FakeKubeAPI, fake_kubeconfig: Path) -> Iterator[Compare]:
    """``compare(ti, try_number)`` -> (provider's answer, our answer), from one fake API, in one form."""
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.kubernetes.provider_compat import streams_natively

    streaming = request.param == "streaming"
    if streaming and not streams_natively(KubernetesExecutor):
        pytest.skip("this provider has no get_streaming_task_log")
    with airflow_pointed_at(fake_kube_api, fake_kubeconfig):
        executors: list[Any] = []

        def run(ti: Any, try_number: int) -> tuple[Any, Any]:
            executor = KubernetesExecutor()  # on 10.18.0 and older this forks a Manager; shut down below
            executors.append(executor)
            pipeline = ExecutorLogPipeline()
            if streaming:
                theirs = _materialized(executor.get_streaming_task_log(ti, try_number))
                return theirs, _materialized(pipeline.read_streaming(ti, try_number))
            return executor.get_task_log(ti, try_number), pipeline.read(ti, try_number)

        try:
            yield run
        finally:
            for executor in executors:
                manager = getattr(executor, "_manager", None)
                if manager is not None:
                    manager.shutdown()


LINES = [f"2026-01-01T00:00:{n % 60:02d}Z line {n}" for n in range(20)]


def _same(compare: Compare, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
    """Both answers, which must be equal; in the list form's shape (streams joined) for the checks below."""
    return same_answers(*compare(ti, try_number))


def test_plain_running_task(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(fake_kube_api, ti, 1, LINES)
    messages, logs = _same(compare, ti, 1)
    assert messages[-1] == "Found logs through kube API"
    assert "line 19" in logs[0]


def test_mapped_task(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor", map_index=3)
    serve_task_pod(fake_kube_api, ti, 1, ["mapped three"])
    serve_task_pod(fake_kube_api, fake_ti(map_index=4), 1, ["mapped four"], name="other-map-index")
    assert "mapped three" in _same(compare, ti, 1)[1][0]


def test_later_try(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor", try_number=3)
    serve_task_pod(fake_kube_api, ti, 2, ["try two"])
    serve_task_pod(fake_kube_api, ti, 3, ["try three"])
    assert "try three" in _same(compare, ti, 3)[1][0]
    assert "try two" in _same(compare, ti, 2)[1][0]


def test_pod_override_namespace(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    from kubernetes.client import models as k8s

    override = k8s.V1Pod(metadata=k8s.V1ObjectMeta(namespace="team-ns"))
    ti = fake_ti("KubernetesExecutor", executor_config={"pod_override": override})
    serve_task_pod(fake_kube_api, ti, 1, ["in team-ns"], namespace="team-ns")
    assert "in team-ns" in _same(compare, ti, 1)[1][0]


def test_multi_namespace_mode(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(fake_kube_api, ti, 1, ["default ns"])
    with conf_vars(
        {
            ("kubernetes_executor", "multi_namespace_mode"): "True",
            ("kubernetes_executor", "multi_namespace_mode_namespace_list"): "default,team-ns",
        }
    ):
        assert "default ns" in _same(compare, ti, 1)[1][0]


def test_escape_codes_are_removed(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(fake_kube_api, ti, 1, ["\x1b[31mred\x1b[0m text", "plain"])
    logs = _same(compare, ti, 1)[1]
    assert "red text" in logs[0]
    assert "\x1b" not in logs[0]


def test_more_lines_than_the_tail(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(fake_kube_api, ti, 1, [f"numbered {n:04d}" for n in range(1000)])
    logs = _same(compare, ti, 1)[1]
    assert "numbered 0999" in logs[0]
    assert "numbered 0899" not in logs[0]
    assert logs[0].count("numbered") == 100


def test_no_pod(compare: Compare) -> None:
    messages, _ = _same(compare, fake_ti("KubernetesExecutor"), 1)
    assert "Cannot find pod for ti" in messages[-1]


def test_two_pods(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(fake_kube_api, ti, 1, ["one"], name="pod-a")
    serve_task_pod(fake_kube_api, ti, 1, ["two"], name="pod-b")
    messages, _ = _same(compare, ti, 1)
    assert "Found multiple pods for ti" in messages[-1]


def test_no_hostname(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor", hostname=None)
    serve_task_pod(fake_kube_api, ti, 1, LINES)
    _same(compare, ti, 1)


def test_empty_log(fake_kube_api: FakeKubeAPI, compare: Compare) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(fake_kube_api, ti, 1, [])
    assert _same(compare, ti, 1)[1] == [""]
