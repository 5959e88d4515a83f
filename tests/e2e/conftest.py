"""One sandboxed Airflow (sqlite, a RUNNING KubernetesExecutor task) and a Kubernetes API with its pod."""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

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
from tests.support.kube import pod_labels as tests_pod_labels

FIX = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
STOCK = "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"
PROVIDER = Version(importlib.metadata.version("apache-airflow-providers-cncf-kubernetes"))
#: Providers before 10.19.0 fork a multiprocessing Manager in KubernetesExecutor.__init__.
MANAGER_IN_INIT = Version("10.19.0") > PROVIDER
POD_LINES = [f"e2e pod line {n:03d}" for n in range(40)]
POD_NAME = "running-task-pod"


@dataclass
class Deployment:
    sandbox: AirflowSandbox
    kube: FakeKubeProcess

    def add_pod_lines(self, lines: list[str]) -> None:
        """Serve ``lines`` as the running task's pod log (replacing the pod)."""
        self.kube.add_pod(POD_NAME, labels=pod_labels(self.sandbox.ti_ids[RUN_ID]), logs={"base": lines})


def pod_labels(ti_id: str, run_id: str = RUN_ID) -> dict[str, str]:
    """The labels the installed provider gives the pod of the seeded task instance ``ti_id`` (try 1)."""
    ti = SimpleNamespace(
        dag_id=DAG_ID, task_id=TASK_ID, map_index=-1, run_id=run_id, queued_by_job_id=QUEUED_BY_JOB_ID, id=ti_id
    )
    return tests_pod_labels(ti, 1)


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The fake Kubernetes API in its own process, and a sandbox whose executor points at it."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "kubeconfig"
    started = time.monotonic()
    with (
        FakeKubeProcess(kubeconfig) as kube,
        AirflowSandbox(kubeconfig=Path(kubeconfig), logging_config_class=FIX) as sandbox,
    ):
        deployment = Deployment(sandbox=sandbox, kube=kube)
        deployment.add_pod_lines(POD_LINES)  # after seeding: the labels may name the task instance's id
        print(f"\n[e2e] sandbox {sandbox.root} ready in {time.monotonic() - started:.1f}s, provider {PROVIDER}")
        yield deployment
    assert sandbox.managers() == [], "sandbox cleanup left Manager processes behind"
