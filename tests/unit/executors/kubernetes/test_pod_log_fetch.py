"""
One shared request for a pod log: the pod remembered (one call) or listed (two), then its log; the
breaker is told how the calls went (only transport failures count against the cluster).
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.kubernetes.pod_log_fetch import PodCache, PodKey, PodLogFetch, PodLogKey, TaskRead
from airflow_executor_logs.executors.resilience.circuit_breaker import BreakerPermit
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs_testing.kube_client import FakeClock, api_exception
from tests.support.kube_double import Kube, kube, refused
from tests.support.task_instances import fake_ti

LINES = ["one", "two"]
THRESHOLD = 2
COOLDOWN = 10.0


@pytest.fixture
def k() -> Kube:
    return kube(breaker_threshold=THRESHOLD, breaker_cooldown=COOLDOWN)


@pytest.fixture
def breaking() -> Kube:
    return kube(breaker_threshold=3, breaker_cooldown=10.0)


def _key(k: Kube, ti: Any) -> PodLogKey:
    executor_cls = k.executor().executor_cls
    return PodLogKey(PodKey(k.reader.cluster(None), "default", k.reader.selector(executor_cls, ti, 1)), 100)


def _permit(k: Kube) -> BreakerPermit:
    permit = k.reader.breakers.admit(k.reader.cluster(None), threshold=THRESHOLD, cooldown=COOLDOWN)
    assert isinstance(permit, BreakerPermit), permit
    return permit


def _fetch(k: Kube, ti: Any, permit: BreakerPermit | None = None) -> PodLogFetch:
    context = k.context()
    key = _key(k, ti)
    return PodLogFetch(
        key,
        k.api,
        permit or _permit(k),
        context,
        clients=k.reader.clients,
        pods=k.reader.pods,
        task=TaskRead(k.executor().executor_cls, None, ti),
    )


def _deadline(k: Kube) -> Deadline:
    return Deadline(k.settings.read_timeout, k.clock)


# ------------------------------------------------------------------ PodLogFetch itself


def test_open_lists_the_pod_reads_its_log_and_remembers_the_pod(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    fetch = _fetch(k, ti)
    assert list(fetch.open(_deadline(k))) == [[b"one\n", b"two\n"]]
    list_call, log_call = k.api.calls
    assert (list_call.route, list_call.namespace, list_call.selector) == ("list", "default", _key(k, ti).pod.selector)
    assert (log_call.route, log_call.name, log_call.tail_lines, log_call.extra["follow"]) == (
        "log",
        "task-pod",
        100,
        False,
    )
    assert (
        list_call.extra["_request_timeout"] == log_call.extra["_request_timeout"] == (k.settings.connect_timeout, 5.0)
    )
    assert k.reader.pods.get(_key(k, ti).pod, 60) == "task-pod"
    assert k.api.open_responses == 0  # read to its end: given back


def test_open_of_a_remembered_pod_is_one_call_and_counts_a_hit(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    list(_fetch(k, ti).open(_deadline(k)))
    k.api.calls.clear()
    assert list(_fetch(k, ti).open(_deadline(k))) == [[b"one\n", b"two\n"]]
    assert [(call.route, call.name) for call in k.api.calls] == [("log", "task-pod")]
    assert k.metrics.names() == [metrics.POD_CACHE_HITS]


def test_no_pod_and_two_pods_raise_the_providers_errors_and_close_the_circuit(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    with pytest.raises(RuntimeError) as none:
        _fetch(k, ti).open(_deadline(k))
    assert none.value.args == ("Cannot find pod for ti %s", ti)
    k.add_pod(ti, ["a"], name="pod-a")
    k.add_pod(ti, ["b"], name="pod-b")
    with pytest.raises(RuntimeError) as two:
        _fetch(k, ti).open(_deadline(k))
    assert two.value.args[:2] == ("Found multiple pods for ti %s: %s", ti)
    assert [pod.metadata.name for pod in two.value.args[2]] == ["pod-a", "pod-b"]
    assert len(k.reader.pods) == 0
    assert k.reader.breakers.state(k.reader.cluster(None)) == "closed"


def test_a_transport_failure_counts_and_opens_the_circuit_at_the_threshold(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.api.fail("list", ConnectionRefusedError("[Errno 111] Connection refused"), times=THRESHOLD)
    for failures in range(1, THRESHOLD + 1):
        with pytest.raises(Exception, match="Connection refused"):
            _fetch(k, ti).open(_deadline(k))
        assert k.reader.breakers.state(k.reader.cluster(None)) == ("open" if failures == THRESHOLD else "closed")
    assert k.metrics.names() == [metrics.BREAKER_OPENINGS]
    refusal = k.reader.breakers.admit(k.reader.cluster(None), threshold=THRESHOLD, cooldown=COOLDOWN)
    assert refusal == (
        "the Kubernetes API failed 2 times in a row, last 0 s ago ([Errno 111] Connection refused); "
        "next attempt in 10 s ([executor_logs] breaker_cooldown)"
    )


def test_an_error_status_is_an_answer_and_resets_the_count(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.api.fail("list", refused())
    with pytest.raises(Exception, match="Connection refused"):
        _fetch(k, ti).open(_deadline(k))
    k.api.fail("list", api_exception(500, "etcd is down"))
    with pytest.raises(Exception, match=r"\(500\)"):
        _fetch(k, ti).open(_deadline(k))
    k.api.fail("list", refused())  # one failure again, not the second in a row
    with pytest.raises(Exception, match="Connection refused"):
        _fetch(k, ti).open(_deadline(k))
    assert k.reader.breakers.state(k.reader.cluster(None)) == "closed"


def test_timed_out_counts_at_once_and_the_late_outcome_does_not_count_again(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    first, second = _fetch(k, ti), _fetch(k, ti)
    first.timed_out()
    assert k.reader.breakers.state(k.reader.cluster(None)) == "closed"
    second.timed_out()
    assert k.reader.breakers.state(k.reader.cluster(None)) == "open"
    assert k.metrics.names() == [metrics.BREAKER_OPENINGS]
    k.add_pod(ti, LINES)
    list(first.open(_deadline(k)))  # its calls end later, and well: the permit is already settled
    assert k.reader.breakers.state(k.reader.cluster(None)) == "open"


def test_a_probe_that_fails_other_than_by_transport_frees_the_probe(k: Kube) -> None:
    ti = fake_ti("KubernetesExecutor")
    k.reader.breakers.admit(k.reader.cluster(None), threshold=1, cooldown=COOLDOWN).failed("refused")  # type: ignore[union-attr]
    k.clock.advance(COOLDOWN)
    probe = _permit(k)
    assert probe.probe
    k.api.fail("list", ValueError("a body the client cannot parse"))
    with pytest.raises(RuntimeError, match="unreadable body"):
        _fetch(k, ti, probe).open(_deadline(k))
    assert k.reader.breakers.state(k.reader.cluster(None)) == "open"  # not stuck half-open
    assert _permit(k).probe  # the next read may probe


# ------------------------------------------------------------------ through the reader: the pod cache


def _calls(k: object) -> list[str]:
    return [call.route for call in k.api.calls]  # type: ignore[attr-defined]


def test_a_steady_read_is_one_call() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    first = k.read(ti)
    for _ in range(5):
        assert k.read(ti) == first
    assert _calls(k) == ["list", "log", "log", "log", "log", "log", "log"]
    assert k.metrics.count(metrics.POD_CACHE_HITS) == 5


def test_a_pod_gone_404_is_listed_again_once_and_the_new_pod_read() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["old pod"], name="pod-a")
    k.read(ti)
    k.api.remove_pod("pod-a")
    k.add_pod(ti, ["new pod"], name="pod-b")  # the pod was replaced
    k.api.calls.clear()
    messages, logs = k.read(ti)
    assert (messages[-1], logs) == ("Found logs through kube API", ["new pod\n"])
    assert [(c.route, c.name) for c in k.api.calls] == [("log", "pod-a"), ("list", None), ("log", "pod-b")]
    assert k.read(ti)[1] == ["new pod\n"]  # and remembered
    assert _calls(k)[-1:] == ["log"]


def test_a_pod_gone_for_good_answers_as_the_provider_does() -> None:
    k, fresh = kube(), kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    k.read(ti)
    k.api.remove_pod("task-pod")
    assert k.read(ti) == fresh.read(ti)  # "Cannot find pod for ti ...", from a new list
    assert _calls(k) == ["list", "log", "log", "list"]


def test_the_pod_is_listed_again_after_the_ttl() -> None:
    k = kube(pod_cache_ttl=30.0)
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    k.read(ti)
    k.clock.advance(29.0)
    k.read(ti)
    k.clock.advance(1.0)
    k.read(ti)
    assert _calls(k) == ["list", "log", "log", "list", "log"]


def test_other_errors_on_the_remembered_pod_are_answered_not_retried() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    k.read(ti)
    k.api.fail("log", api_exception(400, 'container "base" in pod "task-pod" is waiting to start'))
    messages, _ = k.read(ti)
    assert messages[-1] == (
        'Reading from k8s pod logs failed: (400) Error: container "base" in pod "task-pod" is waiting to start'
    )
    assert _calls(k) == ["list", "log", "log"]


def test_a_401_on_the_remembered_pod_rebuilds_the_client_once() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, LINES)
    k.read(ti)
    builds = k.metrics.count(metrics.CLIENT_BUILDS)
    k.api.fail("log", api_exception(401, "token expired"))
    assert k.read(ti)[0][-1] == "Found logs through kube API"
    assert k.metrics.count(metrics.CLIENT_BUILDS) == builds + 1
    assert _calls(k) == ["list", "log", "log", "log"]  # the pod is still known: the same call, with a new client


def test_answers_from_the_cache_equal_fresh_answers() -> None:
    k = kube()
    scenarios = {
        "escape codes": ["\x1b[31mred\x1b[0m text", "plain"],
        "empty": [],
        "long": [f"numbered {n:04d}" for n in range(1000)],
    }
    for task_id, lines in scenarios.items():
        ti = fake_ti("KubernetesExecutor", task_id=task_id.replace(" ", "_"))
        k.add_pod(ti, lines, name=f"pod-{task_id.replace(' ', '-')}")
        fresh = kube()
        fresh.add_pod(ti, lines)
        cold = k.read(ti)
        warm = k.read(ti)
        assert cold == warm == fresh.read(ti), task_id
    assert k.metrics.count(metrics.POD_CACHE_HITS) == 3


# ------------------------------------------------------------------ through the reader: what counts against the cluster


def test_timeouts_count_against_the_cluster(breaking: Kube) -> None:
    k = breaking
    ti = fake_ti("KubernetesExecutor")
    k.api.slow("list", 6.0, times=3)  # past the 5 s read deadline
    for _ in range(3):
        assert k.read(ti)[0][-1] == ("Reading from k8s pod logs timed out after 5 s ([executor_logs] read_timeout)")
    assert k.reader.breakers.state(k.reader.cluster(None)) == "open"
    k.reader.breakers._start_probe = lambda key, probe: None  # type: ignore[method-assign]  # no background probe
    assert k.read(ti)[0][1] == (
        "Reading from k8s pod logs skipped: the Kubernetes API failed 3 times in a row, last 0 s ago (timed out); "
        "next attempt in 10 s ([executor_logs] breaker_cooldown)"
    )


@pytest.mark.parametrize("status", [403, 404, 500])
def test_answers_with_an_error_status_do_not_count(breaking: Kube, status: int) -> None:
    reasons = {403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
    k = breaking
    ti = fake_ti("KubernetesExecutor")
    k.api.fail("list", api_exception(status, "no"), times=5)
    for _ in range(5):
        assert k.read(ti)[0][-1] == f"Reading from k8s pod logs failed: ({status}) {reasons[status]}: no"
    assert k.reader.breakers.state(k.reader.cluster(None)) == "closed"


# ------------------------------------------------------------------ the pod cache


def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    clock = FakeClock()
    cache = PodCache(clock)
    cache.put("a", "pod-a", 2)
    cache.put("b", "pod-b", 2)
    assert cache.get("a", 60) == "pod-a"  # a is now the most recent
    cache.put("c", "pod-c", 2)
    assert (cache.get("a", 60), cache.get("b", 60), cache.get("c", 60)) == ("pod-a", None, "pod-c")
    assert len(cache) == 2
    cache.drop("a", "another-pod")
    assert cache.get("a", 60) == "pod-a"
    cache.drop("a", "pod-a")
    assert cache.get("a", 60) is None


def test_an_entry_lives_for_its_ttl_counted_from_the_last_put() -> None:
    clock = FakeClock()
    cache = PodCache(clock)
    cache.put("k", "pod-a", 10)
    clock.advance(29.9)
    assert cache.get("k", 30) == "pod-a"  # a get does not extend the entry's life
    clock.advance(0.1)
    assert cache.get("k", 30) is None
    assert len(cache) == 0  # an expired entry is dropped when found
    cache.put("k", "pod-b", 10)
    clock.advance(20)
    cache.put("k", "pod-b", 10)  # put again: its time starts again
    clock.advance(20)
    assert cache.get("k", 30) == "pod-b"


def test_a_put_replaces_the_pod_of_its_key() -> None:
    cache = PodCache(FakeClock())
    cache.put("k", "pod-a", 10)
    cache.put("k", "pod-b", 10)
    assert (cache.get("k", 60), len(cache)) == ("pod-b", 1)
    cache.drop("unknown", "pod-b")  # nothing remembered: nothing to drop
    assert len(cache) == 1
