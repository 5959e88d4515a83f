"""A task's worker pod, labelled as the installed cncf-kubernetes provider labels it, served with given lines.

Needs Airflow and the provider (imported on first call, so the server process never loads them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["PodServer", "TaskRef", "serve_task_pod", "task_pod", "task_pod_labels"]


class PodServer(Protocol):
    """Where a pod can be served: ``FakeKubeAPI`` in this process, or ``FakeKubeProcess`` in its own."""

    def add_pod(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class TaskRef:
    """The task-instance fields a worker pod's labels are built from, when there is no task instance at hand."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    queued_by_job_id: int | None = None
    id: str | None = None
    """The task instance's id; needed only where the provider labels pods with it (10.24+ on core 3.4)."""


def task_pod_labels(ti: Any, try_number: int) -> dict[str, str]:
    """The labels the installed provider puts on the worker pod of ``ti``'s try ``try_number``.

    ``ti`` is a task instance or anything with its ``dag_id``, ``task_id``, ``run_id``, ``map_index``,
    ``queued_by_job_id`` (and ``id``) fields, such as :class:`TaskRef`.
    """
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    built = PodGenerator.build_labels_for_k8s_executor_pod(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        try_number=try_number,
        map_index=ti.map_index,
        run_id=ti.run_id,
        airflow_worker=ti.queued_by_job_id,
    )
    labels = {str(key): str(value) for key, value in built.items()}
    if getattr(KubernetesExecutor, "supports_task_instance_uuid", False):  # providers from 10.24
        from airflow.providers.cncf.kubernetes.executors import kubernetes_executor_types

        ti_id = getattr(ti, "id", None)
        if ti_id is None:
            raise ValueError("the installed provider selects a task's pod by its ti_id label: give the task's id")
        labels[getattr(kubernetes_executor_types, "TASK_INSTANCE_ID_LABEL")] = str(ti_id)  # noqa: B009
    return labels


def task_pod(
    ti: Any,
    try_number: int,
    lines: Sequence[str],
    *,
    name: str | None = None,
    namespace: str = "default",
    phase: str = "Running",
) -> dict[str, Any]:
    """Keyword arguments of ``add_pod`` (or one entry of ``FakeKubeProcess(pods=...)``) for the task's pod.

    The pod has one container, ``base`` (the provider's), logging ``lines``.
    """
    if isinstance(lines, str):
        raise TypeError("lines must be a list of log lines, not one string")
    return {
        "name": name or f"{ti.task_id}-{try_number}-pod".replace("_", "-").lower(),
        "namespace": namespace,
        "labels": task_pod_labels(ti, try_number),
        "logs": {"base": list(lines)},
        "phase": phase,
    }


def serve_task_pod(server: PodServer, ti: Any, try_number: int, lines: Sequence[str], **options: Any) -> str:
    """Serve the worker pod of ``ti``'s try ``try_number`` with ``lines``; return its name.

    ``options`` are :func:`task_pod`'s: ``name``, ``namespace``, ``phase``.
    """
    spec = task_pod(ti, try_number, lines, **options)
    server.add_pod(**spec)
    return str(spec["name"])
