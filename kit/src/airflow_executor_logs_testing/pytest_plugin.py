"""pytest fixtures for the loopback Kubernetes API.

pytest loads this module through the distribution's ``pytest11`` entry point (installing the kit is the
opt-in); ``-p no:airflow_executor_logs_testing.pytest_plugin`` leaves it out of a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_executor_logs_testing.kube_api import FakeKubeAPI

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["fake_kube_api", "fake_kube_executor", "fake_kubeconfig"]


@pytest.fixture
def fake_kube_api() -> Iterator[FakeKubeAPI]:
    """A started :class:`FakeKubeAPI`, always stopped after the test."""
    api = FakeKubeAPI()
    try:
        api.start()
        yield api
    finally:
        api.stop()


@pytest.fixture
def fake_kubeconfig(fake_kube_api: FakeKubeAPI, tmp_path: Path) -> Path:
    """A kubeconfig file in ``tmp_path`` pointing at :func:`fake_kube_api`."""
    return fake_kube_api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def fake_kube_executor(
    fake_kube_api: FakeKubeAPI, fake_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeKubeAPI]:
    """:func:`fake_kube_api`, with Airflow's ``KubernetesExecutor`` settings pointing at it for the test.

    Sets ``[core] executor`` and ``[kubernetes_executor] config_file``, ``in_cluster`` and ``namespace``
    through their environment variables, and gives the test a fresh read pipeline (no cached clients).
    """
    from airflow_executor_logs import use_process_pipeline

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor")
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE", str(fake_kubeconfig))
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER", "False")
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", "default")
    use_process_pipeline(None)
    try:
        yield fake_kube_api
    finally:
        use_process_pipeline(None)
