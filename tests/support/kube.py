"""Pods for task instances on the loopback Kubernetes API, and Airflow pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from airflow_executor_logs.testing import FakeKubeAPI, serve_task_pod, task_pod_labels
from tests.support.airflow_state import conf_vars

# The kit's pod helper under the names these tests have always used.
add_task_pod = serve_task_pod
pod_labels = task_pod_labels


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
