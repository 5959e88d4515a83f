"""Pods for task instances on the loopback Kubernetes API, and Airflow pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_executor_logs.testing import FakeKubeAPI
from tests.support.airflow_state import conf_vars


def pod_labels(ti: Any, try_number: int) -> dict[str, str]:
    """The labels the provider puts on the worker pod of ``ti``'s try ``try_number``."""
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    labels: dict[str, str] = PodGenerator.build_labels_for_k8s_executor_pod(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        try_number=try_number,
        map_index=ti.map_index,
        run_id=ti.run_id,
        airflow_worker=ti.queued_by_job_id,
    )
    labels = {key: str(value) for key, value in labels.items()}
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.kubernetes.provider_compat import labels_pods_with_ti_id

    if labels_pods_with_ti_id(KubernetesExecutor):  # 10.24+ on a core with task keys (3.4)
        from airflow.providers.cncf.kubernetes.executors import kubernetes_executor_types

        labels[getattr(kubernetes_executor_types, "TASK_INSTANCE_ID_LABEL")] = str(ti.id)  # noqa: B009
    return labels


def add_task_pod(
    api: FakeKubeAPI,
    ti: Any,
    try_number: int,
    lines: list[str],
    *,
    name: str | None = None,
    namespace: str = "default",
) -> str:
    name = name or f"{ti.task_id}-{try_number}-pod".replace("_", "-").lower()
    api.add_pod(name, namespace=namespace, labels=pod_labels(ti, try_number), logs={"base": lines})
    return name


@contextlib.contextmanager
def airflow_pointed_at(api: FakeKubeAPI, kubeconfig: Path, **executor_logs: str) -> Iterator[None]:
    """Configure ``[kubernetes_executor]`` for ``api`` and ``[executor_logs]`` from keyword arguments."""
    overrides: dict[tuple[str, str], str | None] = {
        ("core", "executor"): "KubernetesExecutor",
        ("kubernetes_executor", "config_file"): str(kubeconfig),
        ("kubernetes_executor", "in_cluster"): "False",
        ("kubernetes_executor", "namespace"): "default",
    }
    overrides.update({("executor_logs", key): value for key, value in executor_logs.items()})
    with conf_vars(overrides):
        yield
