"""A task's pod on the loopback API (``kube_api.task_pods``), labelled as the installed provider labels it."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from airflow_executor_logs_testing import FakeKubeAPI, TaskRef, parse_label_selector, serve_task_pod, task_pod
from tests.support.kube_http import api_client, v1
from tests.support.task_instances import fake_ti

__all__ = ["api_client", "v1"]  # fixtures


def _provider_selector(ti: Any, try_number: int) -> str:
    """The selector the installed provider lists a task's pod with (as its own get_task_log builds it)."""
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    selector: str = PodGenerator.build_selector_for_k8s_executor_pod(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        try_number=try_number,
        map_index=ti.map_index,
        run_id=ti.run_id,
        airflow_worker=ti.queued_by_job_id,
    )
    if getattr(KubernetesExecutor, "supports_task_instance_uuid", False):
        selector += f",ti_id={ti.id}"
    return selector


def test_the_provider_selects_the_served_pod_and_only_for_its_try(
    fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api
) -> None:
    ti = fake_ti("KubernetesExecutor", task_id="my_task", map_index=2)
    assert serve_task_pod(fake_kube_api, ti, 3, ["one", "two"]) == "my-task-3-pod"
    serve_task_pod(fake_kube_api, ti, 4, ["four"], name="other-try")
    listed = v1.list_namespaced_pod("default", label_selector=_provider_selector(ti, 3)).items
    assert [pod.metadata.name for pod in listed] == ["my-task-3-pod"]
    log = v1.read_namespaced_pod_log("my-task-3-pod", "default", container="base", _preload_content=False)
    assert log.read() == b"one\ntwo\n"


def test_task_pod_is_add_pod_keyword_arguments_for_a_task_ref() -> None:
    ref = TaskRef("dag", "task", "run", queued_by_job_id=7, id="0190-ti")
    spec = task_pod(ref, 1, ["line"], namespace="team-ns", phase="Pending")
    assert {k: v for k, v in spec.items() if k != "labels"} == {
        "name": "task-1-pod",
        "namespace": "team-ns",
        "logs": {"base": ["line"]},
        "phase": "Pending",
    }
    assert parse_label_selector(_provider_selector(ref, 1)).matches(spec["labels"])
    assert not parse_label_selector(_provider_selector(ref, 2)).matches(spec["labels"])


def test_lines_given_as_one_string_are_refused() -> None:
    with pytest.raises(TypeError, match="lines must be a list"):
        task_pod(TaskRef("dag", "task", "run"), 1, "one line")


def test_a_provider_that_selects_by_ti_id_needs_the_id() -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    if not getattr(KubernetesExecutor, "supports_task_instance_uuid", False):
        pytest.skip("this provider does not label pods with the task-instance id")
    with pytest.raises(ValueError, match="ti_id label: give the task's id"):
        task_pod(TaskRef("dag", "task", "run"), 1, [])
