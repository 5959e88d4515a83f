"""The circuit breaker per cluster: opens after consecutive transport failures, probes, closes."""

from __future__ import annotations

import threading

import pytest
import urllib3

from airflow_executor_logs import metrics
from airflow_executor_logs.testing.kube_client import api_exception
from tests.support.kube_double import Kube, kube
from tests.support.task_instances import fake_ti

FIRST = "Attempting to fetch logs from pod worker-pod-1 through kube API"


def refused() -> BaseException:
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )  # type: ignore[arg-type]
    return urllib3.exceptions.MaxRetryError(None, "/api/v1/namespaces/default/pods", reason=reason)  # type: ignore[arg-type]


@pytest.fixture
def k() -> Kube:
    return kube(breaker_threshold=3, breaker_cooldown=10.0)


def _cluster(k: Kube) -> object:
    return k.reader.cluster(None)


def test_opens_after_consecutive_transport_failures_and_says_when_it_retries(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["hello"])
    k.api.fail("list", refused(), times=3)
    for _ in range(3):  # closed: each read tries, and says how it failed
        messages, _ = k.read(ti)
        assert messages[-1].startswith("Reading from k8s pod logs failed:")
        assert "Connection refused" in messages[-1]
    assert k.reader.breakers.state(_cluster(k)) == "open"
    calls = k.api.count()

    k.clock.advance(4)
    messages, logs = k.read(ti)  # open: answered at once, no call
    assert messages[0] == FIRST
    assert messages[1].startswith("Reading from k8s pod logs skipped: the Kubernetes API failed 3 times in a row")
    assert "Connection refused" in messages[1]
    assert messages[1].endswith("next attempt in 6 s ([executor_logs] breaker_cooldown)")
    assert logs == [""]
    assert k.api.count() == calls
    assert k.metrics.count(metrics.BREAKER_OPENINGS) == 1
    assert k.metrics.count(metrics.BREAKER_REFUSALS) == 1


def test_a_probe_after_the_cooldown_closes_it(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["hello"])
    k.api.fail("list", refused(), times=3)
    for _ in range(3):
        k.read(ti)
    k.clock.advance(10)

    gate = k.api.hold("list")
    probe: list[tuple[list[str], list[str]]] = []
    thread = threading.Thread(target=lambda: probe.append(k.read(ti)))
    thread.start()
    try:
        while k.api.count("list") < 4:  # the probe is waiting on the API
            threading.Event().wait(0.001)
        assert k.reader.breakers.state(_cluster(k)) == "half-open"
        messages, _ = k.read(fake_ti("KubernetesExecutor", task_id="other"))  # half-open: one probe at a time
        assert messages[1].endswith("a probe read is checking it now")
    finally:
        gate.set()
        thread.join(5)
    assert probe[0][0][-1] == "Found logs through kube API"
    assert k.reader.breakers.state(_cluster(k)) == "closed"
    assert k.read(ti)[0][-1] == "Found logs through kube API"


def test_a_failed_probe_opens_it_again(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.api.fail("list", refused(), times=4)
    for _ in range(3):
        k.read(ti)
    k.clock.advance(10)
    messages, _ = k.read(ti)  # the probe
    assert messages[-1].startswith("Reading from k8s pod logs failed:")
    assert k.reader.breakers.state(_cluster(k)) == "open"
    assert k.read(ti)[0][1].endswith("next attempt in 10 s ([executor_logs] breaker_cooldown)")
    assert k.metrics.count(metrics.BREAKER_OPENINGS) == 2


def test_timeouts_count(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.api.slow("list", 6.0, times=3)  # past the 5 s read deadline
    for _ in range(3):
        assert "timed out after 5 s" in k.read(ti)[0][-1]
    assert k.reader.breakers.state(_cluster(k)) == "open"
    assert "(timed out)" in k.read(ti)[0][1]


@pytest.mark.parametrize("status", [403, 404, 500])
def test_answers_with_an_error_status_do_not_count(k: Kube, status: int) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.api.fail("list", api_exception(status, "no"), times=5)
    for _ in range(5):
        assert k.read(ti)[0][-1].startswith(f"Reading from k8s pod logs failed: ({status})")
    assert k.reader.breakers.state(_cluster(k)) == "closed"


def test_a_success_resets_the_count(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["hello"])
    k.api.fail("list", refused(), times=2)
    k.read(ti), k.read(ti)
    assert k.read(ti)[0][-1] == "Found logs through kube API"
    k.api.fail("list", refused(), times=2)
    k.read(ti), k.read(ti)
    assert k.reader.breakers.state(_cluster(k)) == "closed"


def test_clusters_have_their_own_circuits(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.api.fail("list", refused(), times=3)
    for _ in range(3):
        k.read(ti)
    assert k.reader.breakers.state(_cluster(k)) == "open"
    other_team = ("team_b", *k.reader.cluster(None)[1:])  # the same kube config, another team's key
    assert k.reader.breakers.state(other_team) == "closed"
