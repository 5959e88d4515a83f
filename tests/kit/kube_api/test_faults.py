"""Faults (``kube_api.faults``): the values, and each kind acted out by the loopback API for the real client."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from airflow_executor_logs_testing import FakeKubeAPI, Fault, RecordedRequest
from airflow_executor_logs_testing.kube_api.faults import status_body
from tests.support.kube_http import api_client, make_client, status_of, v1

__all__ = ["api_client", "v1"]  # fixtures

# -- faults ------------------------------------------------------------------------------------------------


def test_fault_delay_and_times(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.inject("list", Fault.delay(0.3), times=1)
    started = time.monotonic()
    v1.list_namespaced_pod("default")
    assert time.monotonic() - started >= 0.3  # a lower bound: load only makes it longer
    # ``times`` used up: a delay the client would give up on applies once, the next call is answered.
    fake_kube_api.inject("list", Fault.delay(600), times=1)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        v1.list_namespaced_pod("default", _request_timeout=0.3)
    v1.list_namespaced_pod("default", _request_timeout=60)


def test_fault_status(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("p", logs=["x"])
    fake_kube_api.inject("*", Fault.status(503, "apiserver is shutting down"), times=2)
    with pytest.raises(ApiException) as first:
        v1.list_namespaced_pod("default")
    assert first.value.status == 503
    assert status_of(first.value)["message"] == "apiserver is shutting down"
    assert status_of(first.value)["reason"] == "ServiceUnavailable"
    with pytest.raises(ApiException) as second:
        v1.read_namespaced_pod_log("p", "default")
    assert second.value.status == 503
    assert v1.read_namespaced_pod_log("p", "default", _preload_content=False).read() == b"x\n"

    fake_kube_api.inject("log", Fault.status(429))
    with pytest.raises(ApiException) as throttled:
        v1.read_namespaced_pod_log("p", "default")
    assert status_of(throttled.value)["reason"] == "TooManyRequests"
    assert len(v1.list_namespaced_pod("default").items) == 1  # other routes unaffected
    fake_kube_api.clear_faults()
    assert v1.read_namespaced_pod_log("p", "default", _preload_content=False).read() == b"x\n"


def test_fault_malformed_json(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.inject("list", Fault.malformed_json(), times=2)
    with pytest.raises(ValueError):  # noqa: PT011 - the client raises a bare ValueError on bad models
        v1.list_namespaced_pod("default")
    raw = v1.list_namespaced_pod("default", _preload_content=False)
    assert raw.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.read())


def test_fault_drip(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("p", logs=["a", "b", "c", "d"])
    fake_kube_api.inject("log", Fault.drip(0.05), times=1)
    response = v1.read_namespaced_pod_log("p", "default", _preload_content=False)
    arrivals = []
    started = time.monotonic()
    for chunk in response.read_chunked():
        arrivals.append((chunk, time.monotonic() - started))
    assert [c for c, _ in arrivals] == [b"a\n", b"b\n", b"c\n", b"d\n"]
    assert arrivals[-1][1] >= 0.15


def test_fault_reset_mid_stream(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("p", logs=[f"line {i}" for i in range(100)])
    fake_kube_api.inject("log", Fault.reset_mid_stream(after_bytes=20), times=1)
    response = v1.read_namespaced_pod_log("p", "default", _preload_content=False)
    assert response.status == 200
    received: list[bytes] = []

    def drain() -> None:
        for chunk in response.stream(1024):
            received.append(chunk)

    with pytest.raises(urllib3.exceptions.ProtocolError):
        drain()
    assert len(b"".join(received)) <= 20

    fake_kube_api.inject("list", Fault.reset_mid_stream(after_bytes=5), times=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        v1.list_namespaced_pod("default")
    # The pool drops the broken connection and the next call works.
    assert v1.read_namespaced_pod_log("p", "default", tail_lines=1, _preload_content=False).read() == b"line 99\n"


def _wait_hanging(api: FakeKubeAPI, count: int) -> None:
    deadline = time.monotonic() + 30
    while api.stats()["hanging"] != count:
        assert time.monotonic() < deadline, f"expected {count} held requests, have {api.stats()['hanging']}"
        time.sleep(0.02)


def test_fault_hang_holds_requests_until_healed(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("p", logs=["before"])
    fake_kube_api.inject("log", Fault.hang())
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # a client that gives up
        v1.read_namespaced_pod_log("p", "default", _request_timeout=0.3)
    answers: list[bytes] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            v1.read_namespaced_pod_log("p", "default", _request_timeout=60, _preload_content=False).read()
        )
    )
    waiting.start()  # a client that waits
    _wait_hanging(fake_kube_api, 2)
    fake_kube_api.clear_faults()
    assert v1.read_namespaced_pod_log("p", "default", _preload_content=False).read() == b"before\n"
    assert fake_kube_api.stats()["hanging"] == 2  # clearing the faults lets no held request go

    fake_kube_api.append_logs("p", ["after"])
    fake_kube_api.inject("log", Fault.hang())
    assert fake_kube_api.heal() == 2
    waiting.join(30)
    assert not waiting.is_alive()
    assert answers == [b"before\nafter\n"]  # answered as the healed API would, with the lines it has now
    _wait_hanging(fake_kube_api, 0)
    assert v1.read_namespaced_pod_log("p", "default", _preload_content=False).read() == b"before\nafter\n"
    assert [r.status for r in fake_kube_api.requests] == [200, 200, 200, 200]  # the abandoned one too
    assert fake_kube_api.heal() == 0


def test_fault_hang_is_released_by_stop(tmp_path: Path) -> None:
    api = FakeKubeAPI().start()
    api_client = make_client(api.write_kubeconfig(tmp_path / "config"))
    try:
        api.inject("list", Fault.hang())
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            client.CoreV1Api(api_client).list_namespaced_pod("default", _request_timeout=0.3)
        assert time.monotonic() - started < 8  # the hang did not hold the client past its timeout (generous)
        assert api.requests[-1].status == 0

        # A second hung request that nobody gives up on, plus an idle keep-alive connection.
        hung = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        hung.request("GET", "/api/v1/pods", headers={"Authorization": f"Bearer {api.token}"})
        idle = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        idle.connect()
        time.sleep(0.1)
        started = time.monotonic()
        api.stop()
        assert time.monotonic() - started < 8  # not the idle connection's 10 s timeout: stop() dropped it
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            hung.getresponse()
        hung.close()
        idle.close()
        api.stop()  # idempotent
    finally:
        api_client.close()
        api.stop()


# -- the values: faults, recorded requests, Status bodies --------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "as_dict"),
    [
        (Fault.delay(1), {"kind": "delay", "seconds": 1.0, "code": 0, "message": "", "after_bytes": 0}),
        (Fault.drip(0.5), {"kind": "drip", "seconds": 0.5, "code": 0, "message": "", "after_bytes": 0}),
        (Fault.hang(), {"kind": "hang", "seconds": 0.0, "code": 0, "message": "", "after_bytes": 0}),
        (Fault.status(500, "x"), {"kind": "status", "seconds": 0.0, "code": 500, "message": "x", "after_bytes": 0}),
        (
            Fault.malformed_json(),
            {"kind": "malformed_json", "seconds": 0.0, "code": 0, "message": "", "after_bytes": 0},
        ),
        (
            Fault.reset_mid_stream(7),
            {"kind": "reset_mid_stream", "seconds": 0.0, "code": 0, "message": "", "after_bytes": 7},
        ),
    ],
)
def test_each_fault_round_trips_through_its_dict(fault: Fault, as_dict: dict[str, object]) -> None:
    assert fault.to_dict() == as_dict
    assert Fault.from_dict(as_dict) == fault


def test_from_dict_takes_defaults_and_refuses_unknown_kinds() -> None:
    assert Fault.from_dict({"kind": "status", "code": 503}) == Fault.status(503, "ServiceUnavailable")
    assert Fault.from_dict({"kind": "reset_mid_stream"}) == Fault.reset_mid_stream(0)
    with pytest.raises(ValueError, match="unknown fault kind 'explode'"):
        Fault.from_dict({"kind": "explode"})
    with pytest.raises(ValueError, match="unknown fault kind None"):
        Fault.from_dict({})


@pytest.mark.parametrize(
    ("code", "reason"),
    [(404, "NotFound"), (429, "TooManyRequests"), (418, "I'maTeapot"), (502, "BadGateway"), (299, "Unknown")],
)
def test_a_status_fault_without_message_says_the_kubernetes_reason(code: int, reason: str) -> None:
    assert Fault.status(code).message == reason
    assert status_body(code, "m")["reason"] == reason


def test_status_body_is_a_kubernetes_failure_status() -> None:
    assert status_body(409, "exists", reason="AlreadyExists") == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "exists",
        "reason": "AlreadyExists",
        "code": 409,
    }


def test_a_recorded_request_is_unanswered_until_its_status_is_set() -> None:
    request = RecordedRequest("GET", "/api/v1/pods", {"a": "b"}, "list", 1.5)
    assert request.to_dict() == {
        "method": "GET",
        "path": "/api/v1/pods",
        "query": {"a": "b"},
        "route": "list",
        "timestamp": 1.5,
        "status": 0,
    }
