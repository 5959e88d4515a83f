"""Airflow pointed at the loopback Kubernetes API (pods are served with the kit's ``serve_task_pod``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from airflow_executor_logs_testing import FakeKubeAPI
from tests.support.airflow_state import conf_vars


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
