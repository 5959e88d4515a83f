"""Faults injected into the loopback Kubernetes API (``testing.kube_api.faults``), seen by the real client."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from airflow_executor_logs.testing import FakeKubeAPI, Fault
from tests.support.kube_http import api_client, make_client, status_of, v1

__all__ = ["api_client", "v1"]  # fixtures

# -- faults ------------------------------------------------------------------------------------------------


def test_fault_delay_and_times(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.inject("list", Fault.delay(0.3), times=1)
    started = time.monotonic()
    v1.list_namespaced_pod("default")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    v1.list_namespaced_pod("default")
    assert time.monotonic() - started < 0.3


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


def test_fault_hang_is_released_by_stop(tmp_path: Path) -> None:
    api = FakeKubeAPI().start()
    api_client = make_client(api.write_kubeconfig(tmp_path / "config"))
    try:
        api.inject("list", Fault.hang())
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            client.CoreV1Api(api_client).list_namespaced_pod("default", _request_timeout=0.3)
        assert time.monotonic() - started < 2
        assert api.requests[-1].status == 0

        # A second hung request that nobody gives up on, plus an idle keep-alive connection.
        hung = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        hung.request("GET", "/api/v1/pods", headers={"Authorization": f"Bearer {api.token}"})
        idle = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        idle.connect()
        time.sleep(0.1)
        started = time.monotonic()
        api.stop()
        assert time.monotonic() - started < 1
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            hung.getresponse()
        hung.close()
        idle.close()
        api.stop()  # idempotent
    finally:
        api_client.close()
        api.stop()


def test_inject_validates_route(fake_kube_api: FakeKubeAPI) -> None:
    with pytest.raises(ValueError, match="route"):
        fake_kube_api.inject("logs", Fault.hang())
    with pytest.raises(ValueError, match="times"):
        fake_kube_api.inject("log", Fault.hang(), times=0)
    assert Fault.from_dict(Fault.status(500, "x").to_dict()) == Fault.status(500, "x")
