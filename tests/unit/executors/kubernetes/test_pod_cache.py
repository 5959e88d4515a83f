"""The pod cache: a steady read is one Kubernetes call; refreshed on 404, on a replaced pod, after its TTL."""

from __future__ import annotations

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.kubernetes.pod_cache import PodCache
from airflow_executor_logs.testing.kube_client import FakeClock, api_exception
from tests.support.kube_double import kube
from tests.support.task_instances import fake_ti

LINES = ["one", "two"]


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
    builds = k.reader.clients.builds
    k.api.fail("log", api_exception(401, "token expired"))
    assert k.read(ti)[0][-1] == "Found logs through kube API"
    assert k.reader.clients.builds == builds + 1
    assert _calls(k) == ["list", "log", "log", "list", "log"]


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
