"""
Reliability through the real HTTP log endpoint: injected faults, hostile input, and secrets.

Every fault scenario must end the same way: HTTP 200 within the deadline (plus the endpoint's own
overhead), a clear message in the log, and no process left behind. See docs/reliability.md.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs_testing import FakeKubeAPI, Fault, serve_task_pod, task_pod_labels
from airflow_executor_logs_testing import executors as fx
from tests.integration.conftest import POD_LINES, SeededCluster
from tests.integration.endpoint import LogEndpoint, add_running_copy, log_endpoint, task_instance_changed
from tests.support.airflow_state import conf_vars
from tests.support.kube import airflow_pointed_at
from tests.support.processes import child_pids, describe, new_children, start_the_helper, zombies
from tests.support.task_instances import fake_ti

pytestmark = pytest.mark.slow

READ_DEADLINE = 2.0
FALLBACK_DEADLINE = 2.0
#: What the endpoint may add around the executor read (DB lookups, rendering) however loaded the machine: a
#: generous bound, well below the 20 s delay and the hangs the scenarios cut (their cost without the deadline).
ENDPOINT_OVERHEAD = 10.0


@pytest.fixture(scope="module")
def endpoint(seeded_cluster: SeededCluster) -> Iterator[LogEndpoint]:
    # The fallback scenarios' deadline (FALLBACK_DEADLINE) is the read's, not the helper's first start.
    start_the_helper()
    with log_endpoint(seeded_cluster.dag_id, seeded_cluster.task_id) as client:
        yield client


@pytest.fixture
def cluster(seeded_cluster: SeededCluster) -> Iterator[SeededCluster]:
    """The seeded deployment, every executor double configured, short deadlines."""
    with (
        airflow_pointed_at(
            seeded_cluster.kube,
            seeded_cluster.kubeconfig,
            read_timeout=str(READ_DEADLINE),
            fallback_timeout=str(FALLBACK_DEADLINE),
        ),
        conf_vars({("core", "executor"): f"KubernetesExecutor,{fx.executor_setting(*fx.ALL_CLASSES)}"}),
    ):
        yield seeded_cluster
    seeded_cluster.kube.clear_faults()


@dataclass(frozen=True)
class Scenario:
    name: str
    expect: tuple[str, ...]
    route: str | None = None
    fault: Fault | None = None
    kubeconfig: str | None = None  # "refused" or "dns"
    executor: type | None = None
    problem: bool = True  # the read fails: its problem must be the log's last line


KUBERNETES_FAULTS = [
    Scenario(
        "k8s-connection-refused", ("Reading from k8s pod logs failed", "Connection refused"), kubeconfig="refused"
    ),
    Scenario("k8s-host-does-not-resolve", ("Reading from k8s pod logs failed", "resolve"), kubeconfig="dns"),
    Scenario("k8s-401", ("failed: (401) Unauthorized",), "list", Fault.status(401, "bad token")),
    Scenario(
        "k8s-403", ("failed: (403) Forbidden: pods is forbidden",), "list", Fault.status(403, "pods is forbidden")
    ),
    Scenario("k8s-404-log", ("failed: (404) Not Found",), "log", Fault.status(404, "pods not found")),
    Scenario("k8s-429", ("failed: (429) Too Many Requests",), "list", Fault.status(429, "slow down")),
    Scenario("k8s-500", ("failed: (500) Internal Server Error: etcd down",), "list", Fault.status(500, "etcd down")),
    Scenario("k8s-list-hangs", ("timed out after 2 s",), "list", Fault.hang()),
    Scenario("k8s-log-hangs", ("timed out after 2 s",), "log", Fault.hang()),
    Scenario("k8s-list-slow", ("timed out after 2 s",), "list", Fault.delay(20)),
    Scenario("k8s-log-drips", ("timed out after 2 s",), "log", Fault.drip(0.1)),
    Scenario(
        "k8s-malformed-json",
        ("failed: the Kubernetes API answered the pod list with an unreadable body",),
        "list",
        Fault.malformed_json(),
    ),
    Scenario("k8s-reset-mid-stream", ("Reading from k8s pod logs failed",), "log", Fault.reset_mid_stream(200)),
]
EXECUTOR_FAULTS = [
    Scenario("executor-init-raises", ("init exploded after starting a Manager",), executor=fx.InitRaisesExecutor),
    Scenario("executor-init-hangs", ("did not return logs within 2 s",), executor=fx.InitHangsExecutor),
    Scenario("executor-get-task-log-raises", ("get_task_log exploded",), executor=fx.GetLogRaisesExecutor),
    Scenario("executor-get-task-log-hangs", ("did not return logs within 2 s",), executor=fx.GetLogHangsExecutor),
    Scenario("executor-end-raises", ("line for running_task try 1",), executor=fx.EndRaisesExecutor, problem=False),
    Scenario("executor-end-hangs", ("did not return logs within 2 s",), executor=fx.EndHangsExecutor),
    Scenario(
        "executor-manager-already-dead",
        ("line for running_task try 1",),
        executor=fx.DeadManagerExecutor,
        problem=False,
    ),
]


def _kubeconfig_for(kind: str, tmp_path: Path) -> Path:
    server = {"refused": "http://127.0.0.1:9", "dns": "http://kube-api.does-not-resolve.invalid:6443"}[kind]
    path = tmp_path / f"kubeconfig-{kind}"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: c\n  cluster:\n    server: {server}\n"
        "users:\n- name: u\n  user:\n    token: some-token-value-123\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
    )
    return path


@pytest.mark.parametrize("scenario", KUBERNETES_FAULTS + EXECUTOR_FAULTS, ids=lambda s: s.name)
def test_fault(scenario: Scenario, cluster: SeededCluster, endpoint: LogEndpoint, tmp_path: Path) -> None:
    before = child_pids()
    threads_before = set(threading.enumerate())
    overrides: dict[tuple[str, str], str | None] = {}
    if scenario.kubeconfig:
        overrides[("kubernetes_executor", "config_file")] = str(_kubeconfig_for(scenario.kubeconfig, tmp_path))
    if scenario.route and scenario.fault:
        cluster.kube.inject(scenario.route, scenario.fault)
    executor = scenario.executor.__name__ if scenario.executor else "KubernetesExecutor"
    deadline = FALLBACK_DEADLINE if scenario.executor else READ_DEADLINE
    with (
        conf_vars(overrides),
        task_instance_changed(cluster.dag_id, cluster.run_id, cluster.task_id, executor=executor),
    ):
        response = endpoint.get(cluster.run_id)

    print(f"[fault] {scenario.name}: HTTP {response.status_code} in {response.elapsed:.2f} s")
    assert response.status_code == 200, response.text[:500]
    assert response.elapsed <= deadline + ENDPOINT_OVERHEAD, f"{response.elapsed:.2f} s"
    for expected in scenario.expect:
        assert expected in response.text, response.text[:1500]
    # Our failure must not send core on to the worker's log server: its error would mislead.
    assert "served logs" not in response.text, response.text[:1500]
    if scenario.problem:
        last = _content(response)[-1]
        assert last.get("level") in ("warning", "error"), last  # the problem ends the log, coloured
        assert last.get("logger") == "airflow_executor_logs", last
    left = new_children(before)
    assert not left, describe(left)
    assert not zombies()
    # No thread is left blocked: short-lived executors ran in a child that is gone, and the
    # Kubernetes reader keeps its deadline with socket timeouts. Its fetch pool's threads stay, idle:
    # no fetch is left in flight.
    cluster.kube.clear_faults()
    assert not [
        thread.name
        for thread in set(threading.enumerate()) - threads_before
        if thread.name.startswith("executor-logs-") and not thread.name.startswith("executor-logs-fetch")
    ]
    _assert_no_fetch_in_flight()
    assert not new_children(before)


def _assert_no_fetch_in_flight(timeout: float = 30.0) -> None:
    """The Kubernetes reader's shared fetches have all ended (each ends at its read's deadline)."""
    import time

    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.log_pipeline import process_pipeline

    found = process_pipeline().registry.find(KubernetesExecutor)
    coalescer = getattr(getattr(found, "read", None), "coalescer", None)
    give_up = time.monotonic() + timeout
    while coalescer is not None and coalescer.in_flight():
        assert time.monotonic() < give_up, f"{coalescer.in_flight()} Kubernetes fetches still in flight"
        time.sleep(0.01)


# --------------------------------------------------------------------------------------------
# Hostile and bad input
# --------------------------------------------------------------------------------------------


def _content(response: Any) -> list[dict[str, Any]]:
    import json

    return list(json.loads(response.text)["content"])


def test_unknown_executor_on_the_task(cluster: SeededCluster, endpoint: LogEndpoint) -> None:
    with task_instance_changed(cluster.dag_id, cluster.run_id, cluster.task_id, executor="NoSuchExecutor"):
        response = endpoint.get(cluster.run_id)
    assert response.status_code == 200
    assert "Cannot find executor 'NoSuchExecutor'" in response.text  # the source message
    assert "served logs" not in response.text, response.text  # no misleading follow-up from the log server
    last = _content(response)[-1]
    assert (last["event"], last["level"]) == (
        "Unknown executor 'NoSuchExecutor': check the task's executor and [core] executor",
        "error",
    )


def test_team_scoped_executor(cluster: SeededCluster, endpoint: LogEndpoint) -> None:
    from unittest import mock

    from airflow.models.dag import DagModel

    setting = f"KubernetesExecutor;team_a={fx.path(fx.CountingExecutor)}"
    with (
        conf_vars({("core", "executor"): setting, ("core", "multi_team"): "True"}),
        mock.patch.object(DagModel, "get_team_name", return_value="team_a"),
        task_instance_changed(cluster.dag_id, cluster.run_id, cluster.task_id, executor="CountingExecutor"),
    ):
        response = endpoint.get(cluster.run_id)
    assert response.status_code == 200, response.text[:500]
    assert "line for running_task try 1" in response.text


def test_task_without_hostname(cluster: SeededCluster, endpoint: LogEndpoint) -> None:
    with task_instance_changed(cluster.dag_id, cluster.run_id, cluster.task_id, hostname=None):
        response = endpoint.get(cluster.run_id)
    assert response.status_code == 200
    assert POD_LINES[-1].split("Z ", 1)[1] in response.text  # the pod is found by labels, not hostname


@pytest.mark.parametrize(("try_number", "status"), [(0, 404), (-1, 422), (99, 404), ("one", 422)])
def test_bad_try_numbers_are_4xx(cluster: SeededCluster, endpoint: LogEndpoint, try_number: Any, status: int) -> None:
    assert endpoint.get(cluster.run_id, try_number).status_code == status


HOSTILE_RUN_IDS = [
    "decoy,airflow-worker",
    "decoy,run_id!=x",
    "decoy=1",
    "decoy in (a,b)",
    "decoy with spaces",
    "décoy-ünïcødé-✓",
    "!decoy",
]


@pytest.mark.parametrize("run_id", HOSTILE_RUN_IDS)
def test_selector_characters_in_run_id_never_match_other_pods(
    run_id: str, cluster: SeededCluster, endpoint: LogEndpoint
) -> None:
    add_running_copy(cluster.dag_id, cluster.run_id, cluster.task_id, run_id)
    ti = fake_ti(dag_id=cluster.dag_id, task_id=cluster.task_id, run_id="decoy", queued_by_job_id=4242)
    # A pod that an injected selector term would match: same task, run "decoy", any worker.
    decoy_labels = {**task_pod_labels(ti, 1), "run_id": "decoy", "x": "y", "a": "b"}
    cluster.kube.add_pod("decoy-pod", labels=decoy_labels, logs={"base": ["DECOY LINE must never be served"]})
    try:
        response = endpoint.get(run_id)
    finally:
        cluster.kube.remove_pod("decoy-pod", "default")
    assert response.status_code == 200, response.text[:500]
    assert "DECOY LINE" not in response.text
    assert "Cannot find pod for ti" in response.text


def test_hostile_run_id_still_finds_its_own_pod(cluster: SeededCluster, endpoint: LogEndpoint) -> None:
    run_id = "own,pod=yes !ü"
    add_running_copy(cluster.dag_id, cluster.run_id, cluster.task_id, run_id)
    ti = fake_ti(dag_id=cluster.dag_id, task_id=cluster.task_id, run_id=run_id, queued_by_job_id=4242)
    serve_task_pod(cluster.kube, ti, 1, ["the hostile run's own line"], name="hostile-own-pod")
    try:
        response = endpoint.get(run_id)
    finally:
        cluster.kube.remove_pod("hostile-own-pod", "default")
    assert "the hostile run's own line" in response.text


@pytest.mark.parametrize("dag_id", ["dag,airflow-worker", "dag=1", "dag with space", "dåg"])
def test_selector_characters_in_dag_id_never_match_other_pods(dag_id: str, cluster: SeededCluster) -> None:
    """Airflow refuses such Dag ids at parse time, so this goes straight to the reader."""
    from airflow_executor_logs.executors.log_pipeline import read_running_task_log

    decoy = fake_ti(dag_id="dag", task_id=cluster.task_id, queued_by_job_id=4242)
    cluster.kube.add_pod(
        "decoy-dag-pod", labels={**task_pod_labels(decoy, 1), "dag_id": "dag"}, logs={"base": ["DECOY"]}
    )
    try:
        messages, logs = read_running_task_log(fake_ti("KubernetesExecutor", dag_id=dag_id, queued_by_job_id=4242), 1)
    finally:
        cluster.kube.remove_pod("decoy-dag-pod", "default")
    assert "DECOY" not in "".join(logs)
    assert "Cannot find pod for ti" in messages[-1]


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------

TOKEN = "sekrit-bearer-token-7c1f0a9e4b"
CERT_MARKER = "SEKRIT-CLIENT-CERT-MARKER"
KEY_MARKER = "SEKRIT-CLIENT-KEY-MARKER"


def _pem(kind: str, marker: str) -> str:
    body = base64.b64encode(marker.encode() * 4).decode()
    return base64.b64encode(f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n".encode()).decode()


def test_no_secret_is_echoed(
    cluster: SeededCluster, endpoint: LogEndpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeKubeAPI(token=TOKEN) as api:
        ti = cluster.running_ti()
        serve_task_pod(api, ti, 1, ["secret test line"])
        kubeconfig = api.write_kubeconfig(
            tmp_path / "kubeconfig",
            {
                "client-certificate-data": _pem("CERTIFICATE", CERT_MARKER),
                "client-key-data": _pem("PRIVATE KEY", KEY_MARKER),
            },
        )
        outputs: list[str] = []
        with airflow_pointed_at(api, kubeconfig, read_timeout=str(READ_DEADLINE)):
            outputs.append(endpoint.get(cluster.run_id).text)  # works
            api.inject("list", Fault.status(500, "boom"))
            outputs.append(endpoint.get(cluster.run_id, ndjson=True).text)
            api.inject("log", Fault.reset_mid_stream(10))
            outputs.append(endpoint.get(cluster.run_id).text)
            api.set_token("another-token-the-client-does-not-have")
            outputs.append(endpoint.get(cluster.run_id).text)  # 401, rebuild, 401
    everything = "\n".join([*outputs, caplog.text])
    assert "secret test line" in outputs[0]
    assert "(401) Unauthorized" in outputs[-1]
    for secret in (TOKEN, CERT_MARKER, KEY_MARKER, _pem("CERTIFICATE", CERT_MARKER)[:40], "Bearer "):
        assert secret not in everything
