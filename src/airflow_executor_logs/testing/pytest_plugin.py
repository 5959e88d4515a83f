"""pytest fixtures for the fake Kubernetes API (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_executor_logs.testing.kube_api import FakeKubeAPI

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["fake_kube_api", "fake_kubeconfig"]


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
