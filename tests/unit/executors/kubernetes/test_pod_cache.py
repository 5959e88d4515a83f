"""The pod cache: a steady read is one Kubernetes call; refreshed on 404, on a replaced pod, after its TTL."""

from __future__ import annotations

from airflow_executor_logs.executors.kubernetes.pod_cache import PodCache
from airflow_executor_logs_testing.kube_client import FakeClock

LINES = ["one", "two"]


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
