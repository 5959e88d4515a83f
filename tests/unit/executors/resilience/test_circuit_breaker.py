"""The circuit breaker per cluster: opens after consecutive transport failures, probes, closes."""

from __future__ import annotations

import threading

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.resilience.circuit_breaker import BreakerPermit, CircuitBreakers
from airflow_executor_logs_testing.kube_client import FakeClock
from tests.support.kube_double import Kube, kube, refused
from tests.support.task_instances import fake_ti

FIRST = "Attempting to fetch logs from pod worker-pod-1 through kube API"


# ------------------------------------------------------------------ CircuitBreakers on a fake clock

KEY = ("team", "cluster")


def _admit(breakers: CircuitBreakers, threshold: int = 2, cooldown: float = 10.0) -> BreakerPermit:
    permit = breakers.admit(KEY, threshold=threshold, cooldown=cooldown)
    assert isinstance(permit, BreakerPermit), permit
    return permit


def test_the_circuit_opens_at_the_threshold_and_refuses_with_why_and_when() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(clock)
    assert _admit(breakers).failed("refused") is False
    assert breakers.state(KEY) == "closed"
    assert _admit(breakers).failed("reset by peer") is True
    assert breakers.state(KEY) == "open"
    clock.advance(3.4)
    assert breakers.admit(KEY, threshold=2, cooldown=10.0) == (
        "the Kubernetes API failed 2 times in a row, last 3 s ago (reset by peer); "
        "next attempt in 7 s ([executor_logs] breaker_cooldown)"
    )


def test_after_the_cooldown_one_probe_goes_and_the_others_are_told_so() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(clock)
    _admit(breakers, threshold=1).failed("refused")
    clock.advance(9.9)
    assert isinstance(breakers.admit(KEY, threshold=1, cooldown=10.0), str)
    clock.advance(0.1)
    probe = _admit(breakers, threshold=1)
    assert probe.probe is True
    assert breakers.state(KEY) == "half-open"
    assert breakers.admit(KEY, threshold=1, cooldown=10.0) == (
        "the Kubernetes API failed 1 times in a row, last 10 s ago (refused); a probe read is checking it now"
    )
    probe.succeeded()
    assert breakers.state(KEY) == "closed"
    assert _admit(breakers, threshold=1).probe is False


def test_a_failed_probe_opens_the_circuit_for_another_cooldown_whatever_the_threshold() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(clock)
    _admit(breakers, threshold=1).failed("refused")
    clock.advance(10.0)
    assert _admit(breakers, threshold=5).failed("refused again") is True
    assert breakers.state(KEY) == "open"
    clock.advance(9.0)
    assert breakers.admit(KEY, threshold=5, cooldown=10.0) == (
        "the Kubernetes API failed 2 times in a row, last 9 s ago (refused again); "
        "next attempt in 1 s ([executor_logs] breaker_cooldown)"
    )


def test_a_probe_that_never_reached_the_api_frees_the_probe_slot() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(clock)
    _admit(breakers, threshold=1).failed("refused")
    clock.advance(10.0)
    _admit(breakers, threshold=1).done()
    assert breakers.state(KEY) == "open"
    assert _admit(breakers, threshold=1).probe is True


def test_a_permit_is_settled_by_its_first_outcome_only() -> None:
    breakers = CircuitBreakers(FakeClock())
    permit = _admit(breakers, threshold=1)
    permit.succeeded()
    assert permit.failed("late") is False
    permit.done()
    assert breakers.state(KEY) == "closed"
    failing = _admit(breakers, threshold=1)
    assert failing.failed("refused") is True
    failing.succeeded()  # the late answer of a read already counted as failed
    assert breakers.state(KEY) == "open"


def test_keys_have_their_own_circuits() -> None:
    breakers = CircuitBreakers(FakeClock())
    _admit(breakers, threshold=1).failed("refused")
    assert (breakers.state(KEY), breakers.state(("other", "cluster"))) == ("open", "closed")
    assert isinstance(breakers.admit(("other", "cluster"), threshold=1, cooldown=10.0), BreakerPermit)


# ------------------------------------------------------------------ through the Kubernetes reader


@pytest.fixture
def k() -> Kube:
    return kube(breaker_threshold=3, breaker_cooldown=10.0)


def _cluster(k: Kube) -> object:
    return k.reader.cluster(None)


def test_opens_after_consecutive_transport_failures_and_says_when_it_retries(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["hello"])
    k.api.fail("list", refused(), times=None)
    for _ in range(3):  # closed: each read tries, and says how it failed
        messages, _ = k.read(ti)
        assert messages[-1].startswith("Reading from k8s pod logs failed:")
        assert "Connection refused" in messages[-1]
    assert k.reader.breakers.state(_cluster(k)) == "open"
    calls = k.api.count()

    k.clock.advance(4)
    messages, logs = k.read(ti)  # open: answered without a read; one cheap probe call, which fails
    assert messages[0] == FIRST
    assert messages[1].startswith("Reading from k8s pod logs skipped: the Kubernetes API failed 3 times in a row")
    assert messages[1].endswith("next attempt in 6 s ([executor_logs] breaker_cooldown)")
    assert "Connection refused" in messages[1]
    assert logs == [""]
    assert k.api.count() == calls + 1
    messages, _ = k.read(ti)  # within a second of that probe: no call at all
    assert messages[1].startswith("Reading from k8s pod logs skipped")
    assert k.api.count() == calls + 1
    assert k.metrics.count(metrics.BREAKER_OPENINGS) == 1
    assert k.metrics.count(metrics.BREAKER_REFUSALS) == 2


def test_a_background_probe_closes_it_and_the_read_that_started_it_reads_fresh_lines(k: Kube) -> None:
    """The API answers again: the next read, not the end of the cool-down, gets fresh lines."""
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["hello"])
    k.api.fail("list", refused(), times=3)
    for _ in range(3):
        k.read(ti)
    assert k.reader.breakers.state(_cluster(k)) == "open"
    assert k.read(ti)[0][-1] == "Found logs through kube API"
    assert k.reader.breakers.state(_cluster(k)) == "closed"


def test_without_a_probe_a_read_after_the_cooldown_is_the_probe(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["hello"])
    k.api.fail("list", refused(), times=3)
    for _ in range(3):
        k.read(ti)
    k.clock.advance(10)
    k.reader.breakers._start_probe = lambda key, probe: None  # type: ignore[method-assign]  # no background probe

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
    k.reader.breakers._start_probe = lambda key, probe: None  # type: ignore[method-assign]  # no background probe
    messages, _ = k.read(ti)  # the probe
    assert messages[-1].startswith("Reading from k8s pod logs failed:")
    assert k.reader.breakers.state(_cluster(k)) == "open"
    assert k.read(ti)[0][1].endswith("next attempt in 10 s ([executor_logs] breaker_cooldown)")
    assert k.metrics.count(metrics.BREAKER_OPENINGS) == 2


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
