"""The in-process ``CoreV1Api`` double (``kube_client``): pods, logs, recorded calls, faults, the clock."""

from __future__ import annotations

import json
import threading

import pytest
import urllib3
from kubernetes.client import V1PodList
from kubernetes.client.rest import ApiException

from airflow_executor_logs_testing import kube_client
from airflow_executor_logs_testing.kube_client import Call, FakeClock, KubeClientDouble, api_exception


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> KubeClientDouble:
    double = KubeClientDouble(clock)
    double.add_pod("b", {"app": "web"}, ["b1", "b2", "b3"])
    double.add_pod("a", {"app": "web", "tier": "db"}, ["a1"])
    double.add_pod("c", {"app": "web"}, ["c1"], namespace="other")
    return double


def test_the_clock_moves_only_when_told() -> None:
    clock = FakeClock()
    assert (clock(), clock()) == (1000.0, 1000.0)
    clock.advance(2.5)
    assert clock() == 1002.5
    assert FakeClock(start=0.0)() == 0.0


def test_list_answers_one_namespace_by_selector_sorted_by_name(api: KubeClientDouble) -> None:
    listed = api.list_namespaced_pod("default", label_selector="app=web", _request_timeout=3)
    assert isinstance(listed, V1PodList)
    assert [(p.metadata.namespace, p.metadata.name, p.metadata.labels) for p in listed.items] == [
        ("default", "a", {"app": "web", "tier": "db"}),
        ("default", "b", {"app": "web"}),
    ]
    assert [p.metadata.name for p in api.list_namespaced_pod("default", label_selector="tier").items] == ["a"]
    assert [p.metadata.name for p in api.list_namespaced_pod("other").items] == ["c"]
    assert api.calls == [
        Call("list", "default", selector="app=web", extra={"_request_timeout": 3}),
        Call("list", "default", selector="tier"),
        Call("list", "other", selector=""),
    ]


def test_log_whole_or_tail_preloaded(api: KubeClientDouble) -> None:
    assert api.read_namespaced_pod_log("b", "default") == "b1\nb2\nb3\n"
    assert api.read_namespaced_pod_log("b", "default", tail_lines=2) == "b2\nb3\n"
    assert api.read_namespaced_pod_log("b", "default", tail_lines=0) == ""
    assert api.read_namespaced_pod_log("b", "default", tail_lines=10) == "b1\nb2\nb3\n"
    assert [(c.route, c.name, c.tail_lines) for c in api.calls] == [("log", "b", t) for t in (None, 2, 0, 10)]
    assert (api.count("log"), api.count("list"), api.count()) == (4, 0, 4)


def test_a_missing_pod_is_a_404_api_exception(api: KubeClientDouble) -> None:
    with pytest.raises(ApiException) as missing:
        api.read_namespaced_pod_log("c", "default")  # c lives in another namespace
    assert (missing.value.status, json.loads(missing.value.body)["message"]) == (404, 'pods "c" not found')
    api.remove_pod("b")
    with pytest.raises(ApiException):
        api.read_namespaced_pod_log("b", "default")
    assert api.count("log") == 2  # failed calls are calls


def test_add_pod_replaces_a_pod_of_the_same_name(api: KubeClientDouble) -> None:
    api.add_pod("b", {"app": "db"}, ["new"])
    assert api.read_namespaced_pod_log("b", "default") == "new\n"
    assert [p.metadata.name for p in api.list_namespaced_pod("default", label_selector="app=db").items] == ["b"]


def test_a_streamed_log_reads_in_pieces_and_counts_as_open_until_released_or_closed(api: KubeClientDouble) -> None:
    first = api.read_namespaced_pod_log("b", "default", _preload_content=False)
    second = api.read_namespaced_pod_log("a", "default", _preload_content=False)
    assert api.open_responses == 2
    assert (first.supports_chunked_reads(), first.chunked) == (False, False)
    assert [first.read(4), first.read1(4), first.read(), first.read()] == [b"b1\nb", b"2\nb3", b"\n", b""]
    first.release_conn()
    first.close()  # ends once only
    assert api.open_responses == 1
    second.close()
    assert api.open_responses == 0


def test_fail_raises_the_given_error_times_times_on_its_route_only(api: KubeClientDouble) -> None:
    api.fail("log", api_exception(500, "boom"), times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            api.read_namespaced_pod_log("a", "default")
        assert failed.value.status == 500
    assert len(api.list_namespaced_pod("default").items) == 2  # another route
    assert api.read_namespaced_pod_log("a", "default") == "a1\n"


def test_fail_with_times_none_fails_every_call_and_faults_queue_in_order(api: KubeClientDouble) -> None:
    api.fail("list", ValueError("first"), times=1)
    api.fail("list", RuntimeError("always"), times=None)
    with pytest.raises(ValueError, match="first"):
        api.list_namespaced_pod("default")
    for _ in range(3):
        with pytest.raises(RuntimeError, match="always"):
            api.list_namespaced_pod("default")


def test_slow_advances_the_clock_by_the_time_a_call_takes(api: KubeClientDouble, clock: FakeClock) -> None:
    api.slow("log", 2.0)
    assert api.read_namespaced_pod_log("a", "default", _request_timeout=(1, 5)) == "a1\n"
    assert clock() == 1002.0
    api.read_namespaced_pod_log("a", "default")  # the fault was used up
    assert clock() == 1002.0
    with pytest.raises(ValueError, match="needs a FakeClock"):
        KubeClientDouble().slow("log", 1.0)


@pytest.mark.parametrize("request_timeout", [1.5, (9, 1.5)])
def test_a_call_slower_than_its_read_timeout_times_out_at_the_timeout(
    api: KubeClientDouble, clock: FakeClock, request_timeout: float | tuple[float, float]
) -> None:
    api.slow("list", 10.0, times=None)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError, match=r"read timeout=1\.5"):
        api.list_namespaced_pod("default", _request_timeout=request_timeout)
    assert clock() == 1001.5
    api.list_namespaced_pod("default")  # no timeout: it takes the whole 10 s
    assert clock() == 1011.5


def test_a_held_call_waits_for_its_release(api: KubeClientDouble) -> None:
    gate = api.hold("log")
    answers: list[str] = []
    reader = threading.Thread(target=lambda: answers.append(api.read_namespaced_pod_log("a", "default")))
    reader.start()
    reader.join(0.05)
    assert (reader.is_alive(), answers, api.count("log")) == (True, [], 1)  # called, not answered
    gate.set()
    reader.join(5)
    assert answers == ["a1\n"]


def test_a_held_call_nobody_releases_gives_up(api: KubeClientDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_client, "HOLD_LIMIT", 0.01)
    api.hold("list")
    with pytest.raises(TimeoutError, match="a held list call was not released"):
        api.list_namespaced_pod("default")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, "Unauthorized"), (403, "Forbidden"), (404, "Not Found"), (500, "Internal Server Error"), (503, "Error")],
)
def test_api_exception_is_shaped_like_the_clients(status: int, reason: str) -> None:
    error = api_exception(status, "why")
    assert isinstance(error, ApiException)
    assert (error.status, error.reason) == (status, reason)
    assert json.loads(error.body) == {"kind": "Status", "status": "Failure", "message": "why", "code": status}
