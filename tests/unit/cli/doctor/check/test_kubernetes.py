"""The Kubernetes check against the loopback API: client, ``/version`` and RBAC per namespace, under the deadline."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_executor_logs.cli.doctor.check.executors import check_executors
from airflow_executor_logs.cli.doctor.check.kubernetes import check_cluster, clusters
from airflow_executor_logs.cli.doctor.check.results import CheckResult
from airflow_executor_logs.cli.doctor.check.running import RunningTask
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs_testing import FakeKubeAPI, Fault
from tests.support.kube import airflow_pointed_at
from tests.support.task_instances import fake_ti
from tests.unit.cli.doctor.check.conftest import CONNECT, READ

#: A check cut by its deadline answers within it, plus scheduling slack on a loaded machine.
BOUND = READ + CONNECT + 1.0


@pytest.fixture
def kube(fake_kube_api: FakeKubeAPI, fake_kubeconfig: Path) -> Iterator[FakeKubeAPI]:
    with airflow_pointed_at(fake_kube_api, fake_kubeconfig):
        yield fake_kube_api


def _check(settings: Settings, running: list[RunningTask] | None = None) -> tuple[CheckResult, float]:
    pipeline = ExecutorLogPipeline(settings=settings)
    plans = check_executors(pipeline, settings, running or [])

    def resolve(ti: object) -> object:
        return pipeline.resolver.resolve(ti, multi_team=False)

    [cluster] = clusters(plans, running or [], resolve)
    started = time.monotonic()
    result = check_cluster(cluster, settings)
    return result, time.monotonic() - started


def test_healthy(kube: FakeKubeAPI, settings: Settings) -> None:
    result, _ = _check(settings)
    assert result.status == "ok", result
    assert result.summary == f"{kube.url} answers (v1.31.0-fake); may list pods and get pods/log in namespace default"
    reviews = [r for r in kube.requests if r.route == "review"]
    assert len(reviews) == 2


def test_rbac_denied_in_one_namespace_of_a_multi_namespace_setup(
    kube: FakeKubeAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes.client import V1ObjectMeta, V1Pod

    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__MULTI_NAMESPACE_MODE", "True")
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__MULTI_NAMESPACE_MODE_NAMESPACE_LIST", "team-a,team-b")
    kube.deny("list", "pods", namespace="team-b")
    kube.deny("get", "pods/log", namespace="team-c")
    override = {"pod_override": V1Pod(metadata=V1ObjectMeta(namespace="team-c"))}
    running = [RunningTask(fake_ti("KubernetesExecutor", executor_config=override), None, None)]
    result, _ = _check(settings, running)
    assert result.status == "fail"
    assert result.details["namespaces"] == ["default", "team-a", "team-b", "team-c"]
    assert result.summary == (
        "the service account may not list pods in namespace team-b, get pods/log in namespace team-c"
    )
    assert result.fix == (
        'add to a Role in namespace "team-b" bound to the API server\'s service account: rules: '
        '[{apiGroups: [""], resources: ["pods"], verbs: ["list"]}]; '
        'add to a Role in namespace "team-c" bound to the API server\'s service account: rules: '
        '[{apiGroups: [""], resources: ["pods/log"], verbs: ["get"]}]'
    )


def test_multi_namespace_mode_without_a_list_needs_a_cluster_role(
    kube: FakeKubeAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__MULTI_NAMESPACE_MODE", "True")
    kube.deny("list", "pods", namespace=None)
    result, _ = _check(settings)
    assert result.status == "fail"
    assert "list pods in every namespace" in result.summary
    assert result.fix is not None
    assert "add to a ClusterRole (ClusterRoleBinding) bound to the API server's service account" in result.fix


def test_version_hangs(kube: FakeKubeAPI, settings: Settings) -> None:
    kube.inject("version", Fault.hang())
    result, elapsed = _check(settings)
    assert result.status == "fail"
    assert result.summary.startswith(f"the Kubernetes API at {kube.url} does not answer /version: ")
    assert elapsed <= BOUND, elapsed


def test_the_api_is_down(kube: FakeKubeAPI, settings: Settings) -> None:
    kube.stop()
    result, elapsed = _check(settings)
    assert result.status == "fail"
    assert "does not answer /version" in result.summary
    assert elapsed <= BOUND, elapsed


def test_a_kubeconfig_whose_exec_plugin_hangs(
    kube: FakeKubeAPI, fake_kubeconfig: Path, settings: Settings, tmp_path: Path
) -> None:
    pidfile = tmp_path / "plugin.pids"
    plugin = tmp_path / "get-token.sh"
    plugin.write_text(f"#!/bin/sh\necho $$ >> {pidfile}\nexec sleep 3600\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}}
    fake_kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: c\n  cluster:\n    server: {json.dumps(kube.url)}\n"
        f"users:\n- name: u\n  user: {json.dumps(user)}\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
    )
    try:
        result, elapsed = _check(settings)
    finally:
        deadline = time.monotonic() + 5
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in {int(line) for line in pidfile.read_text().split()} if pidfile.exists() else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert result.status == "fail"
    assert result.summary.startswith(f"the Kubernetes client was not built within {READ:g} s")
    assert result.fix is not None
    assert "exec plugin" in result.fix
    assert elapsed <= BOUND, elapsed
    assert not [r for r in kube.requests if r.route != "other"]  # nothing was sent
