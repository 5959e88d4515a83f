"""One sandboxed Airflow (sqlite, a RUNNING KubernetesExecutor task) and a Kubernetes API with its pod."""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.version import Version

from airflow_executor_logs.testing import FakeKubeProcess
from airflow_executor_logs.testing.airflow_sandbox import (
    DAG_ID,
    QUEUED_BY_JOB_ID,
    RUN_ID,
    TASK_ID,
    AirflowSandbox,
)

FIX = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
STOCK = "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"
PROVIDER = Version(importlib.metadata.version("apache-airflow-providers-cncf-kubernetes"))
#: Providers before 10.19.0 fork a multiprocessing Manager in KubernetesExecutor.__init__.
MANAGER_IN_INIT = Version("10.19.0") > PROVIDER
POD_LINES = [f"e2e pod line {n:03d}" for n in range(40)]


@dataclass
class Deployment:
    sandbox: AirflowSandbox
    kube: FakeKubeProcess


def _pod_labels() -> dict[str, str]:
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    labels = PodGenerator.build_labels_for_k8s_executor_pod(
        dag_id=DAG_ID, task_id=TASK_ID, try_number=1, map_index=-1, run_id=RUN_ID, airflow_worker=QUEUED_BY_JOB_ID
    )
    return {key: str(value) for key, value in labels.items()}


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The fake Kubernetes API in its own process, and a sandbox whose executor points at it."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "kubeconfig"
    pod = {"name": "running-task-pod", "namespace": "default", "labels": _pod_labels(), "logs": {"base": POD_LINES}}
    started = time.monotonic()
    with (
        FakeKubeProcess(kubeconfig, pods=[pod]) as kube,
        AirflowSandbox(kubeconfig=Path(kubeconfig), logging_config_class=FIX) as sandbox,
    ):
        print(f"\n[e2e] sandbox {sandbox.root} ready in {time.monotonic() - started:.1f}s, provider {PROVIDER}")
        yield Deployment(sandbox=sandbox, kube=kube)
    assert sandbox.managers() == [], "sandbox cleanup left Manager processes behind"
