"""
One sandboxed Airflow for every e2e test, and a Kubernetes API serving its pod.

The sandbox (sqlite) is migrated and seeded once per session with every task instance the e2e tests read:
the main run on the KubernetesExecutor, one on ``PlainExecutor`` (named by class name), one on
``ForkingLogExecutor`` (named by module path) and one on an executor that does not exist. Each api-server
gets its own ``TMPDIR`` under it.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.version import Version

from airflow_executor_logs_testing import FakeKubeProcess, TaskRef, serve_task_pod
from airflow_executor_logs_testing.executors import ForkingLogExecutor, PlainExecutor
from tests.support.sandbox import DAG_ID, QUEUED_BY_JOB_ID, RUN_ID, TASK_ID, AirflowSandbox, ApiServer

FIX = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
STOCK = "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"
PROVIDER = Version(importlib.metadata.version("apache-airflow-providers-cncf-kubernetes"))
#: Providers before 10.19.0 fork a multiprocessing Manager in KubernetesExecutor.__init__.
MANAGER_IN_INIT = Version("10.19.0") > PROVIDER
POD_LINES = [f"e2e pod line {n:03d}" for n in range(40)]
POD_NAME = "running-task-pod"

_MODULE = ForkingLogExecutor.__module__
#: ``[core] executor`` of the sandbox: the default (KubernetesExecutor) first, then the two test doubles.
CORE_EXECUTOR = f"KubernetesExecutor,{_MODULE}.PlainExecutor,{_MODULE}.ForkingLogExecutor"
PLAIN_RUN = ("executor_logs_demo__plain", PlainExecutor.__name__)  # found by class name
FALLBACK_RUN = ("executor_logs_demo__fallback", f"{_MODULE}.ForkingLogExecutor")  # found by module path
#: A task instance whose executor name resolves to nothing (not in ``[core] executor``, no such class).
UNKNOWN_RUN = ("executor_logs_demo__unknown", "NoSuchExecutor")


@dataclass
class Deployment:
    sandbox: AirflowSandbox
    kube: FakeKubeProcess

    def add_pod_lines(self, lines: list[str]) -> None:
        """Serve ``lines`` as the running task's pod log (replacing the pod)."""
        ti = TaskRef(DAG_ID, TASK_ID, RUN_ID, queued_by_job_id=QUEUED_BY_JOB_ID, id=self.sandbox.ti_ids[RUN_ID])
        serve_task_pod(self.kube, ti, 1, lines, name=POD_NAME)


def assert_tails(deployment: Deployment, server: ApiServer) -> None:
    """Tail as the UI does: send the continuation token back; only the line written since comes back (HTTP 200)."""
    first = server.fetch_task_log()
    assert first.status_code == 200, first.text[:500]
    token = json.loads(first.text)["continuation_token"]
    assert token, "no continuation token to tail with"
    new_line = "e2e pod line written after the first read"
    deployment.add_pod_lines([*POD_LINES, new_line])
    # A worker reuses its answer for [executor_logs] answer_ttl (1 s): a tail within it would get the first
    # answer again, and so no new line (what the UI sees at its next poll, 3 s on).
    time.sleep(1.2)
    try:
        more = server.fetch_task_log(params={"token": token})
    finally:
        deployment.add_pod_lines(POD_LINES)
    assert more.status_code == 200, more.text[:1000]
    assert new_line in more.text, more.text[-1500:]
    assert POD_LINES[-1] not in more.text, f"already sent lines came back: {more.text[-1500:]}"


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The fake Kubernetes API in its own process, and the one sandbox whose executor points at it."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "kubeconfig"
    started = time.monotonic()
    with (
        FakeKubeProcess(kubeconfig) as kube,
        AirflowSandbox(
            kubeconfig=Path(kubeconfig),
            logging_config_class=FIX,
            extra_runs=[PLAIN_RUN, FALLBACK_RUN, UNKNOWN_RUN],
            extra_env={"AIRFLOW__CORE__EXECUTOR": CORE_EXECUTOR},
        ) as sandbox,
    ):
        deployment = Deployment(sandbox=sandbox, kube=kube)
        deployment.add_pod_lines(POD_LINES)  # after seeding: the labels may name the task instance's id
        print(f"\n[e2e] sandbox {sandbox.root} ready in {time.monotonic() - started:.1f}s, provider {PROVIDER}")
        yield deployment
    assert sandbox.managers() == [], "sandbox cleanup left Manager processes behind"
