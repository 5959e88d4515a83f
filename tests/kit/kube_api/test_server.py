"""The loopback Kubernetes API over HTTP (``kube_api.server``): routes, pods, logs, auth, bookkeeping.

Driven by the real ``kubernetes`` client, or by plain ``http.client`` where the client would refuse the request.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from airflow_executor_logs_testing import FakeKubeAPI
from tests.support.kube_http import api_client, make_client, raw_get, status_of, v1

__all__ = ["api_client", "v1"]  # fixtures


def _request(api: FakeKubeAPI, method: str, path: str) -> tuple[int, bytes]:
    """``method path`` with the API's token over plain ``http.client``: status and body."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        conn.request(method, path, headers={"Authorization": f"Bearer {api.token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- pods --------------------------------------------------------------------------------------------------


def test_list_get_pods_deserialize(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("web-1", labels={"app": "web", "tier": "front"}, logs=["hello"])
    fake_kube_api.add_pod("web-2", labels={"app": "web"}, logs={"base": [], "sidecar": []}, phase="Pending")
    fake_kube_api.add_pod("db-1", namespace="data", labels={"app": "db"})

    pods = v1.list_namespaced_pod("default", label_selector="app=web,tier")
    assert isinstance(pods, client.V1PodList)
    assert [p.metadata.name for p in pods.items] == ["web-1"]
    pod = pods.items[0]
    assert pod.metadata.namespace == "default"
    assert pod.metadata.labels == {"app": "web", "tier": "front"}
    assert pod.metadata.uid
    assert pod.metadata.creation_timestamp is not None
    assert [c.name for c in pod.spec.containers] == ["base"]
    assert pod.status.phase == "Running"
    assert pods.metadata.resource_version

    names = {p.metadata.name for p in v1.list_namespaced_pod("default", label_selector="app in (web, db)").items}
    assert names == {"web-1", "web-2"}
    everywhere = v1.list_pod_for_all_namespaces(label_selector="app notin (web)")
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [("data", "db-1")]

    single = v1.read_namespaced_pod("web-2", "default")
    assert isinstance(single, client.V1Pod)
    assert single.status.phase == "Pending"
    assert [c.name for c in single.spec.containers] == ["base", "sidecar"]

    fake_kube_api.remove_pod("web-2", "default")
    assert [p.metadata.name for p in v1.list_namespaced_pod("default").items] == ["web-1"]
    fake_kube_api.clear_pods()
    assert v1.list_pod_for_all_namespaces().items == []


def test_pod_errors(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("two", logs={"base": ["x"], "sidecar": ["y"]})

    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_pod_log("nope", "default")
    assert missing.value.status == 404
    assert status_of(missing.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "code": 404,
    }
    with pytest.raises(ApiException) as missing_pod:
        v1.read_namespaced_pod("nope", "default")
    assert missing_pod.value.status == 404

    with pytest.raises(ApiException) as bad_container:
        v1.read_namespaced_pod_log("two", "default", container="nope")
    assert bad_container.value.status == 400
    assert status_of(bad_container.value)["message"] == "container nope is not valid for pod two"
    assert status_of(bad_container.value)["reason"] == "BadRequest"

    with pytest.raises(ApiException) as ambiguous:
        v1.read_namespaced_pod_log("two", "default")
    assert ambiguous.value.status == 400
    assert "choose one of: [base sidecar]" in status_of(ambiguous.value)["message"]

    with pytest.raises(ApiException) as bad_selector:
        v1.list_namespaced_pod("default", label_selector="a in (b")
    assert bad_selector.value.status == 400
    assert status_of(bad_selector.value)["reason"] == "BadRequest"

    status, body = raw_get(fake_kube_api, "/apis/apps/v1/deployments", fake_kube_api.token)
    assert status == 404
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"


# -- logs --------------------------------------------------------------------------------------------------


def test_read_log_tail_and_container(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("p", logs=["one", "two", "three"])
    fake_kube_api.add_pod("multi", logs={"base": ["b1"], "sidecar": ["s1", "s2"]})

    response = v1.read_namespaced_pod_log("p", "default", tail_lines=2, _preload_content=False)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.read() == b"two\nthree\n"
    response.release_conn()

    full = v1.read_namespaced_pod_log("p", "default", container="base", _preload_content=False)
    assert full.read() == b"one\ntwo\nthree\n"
    empty = v1.read_namespaced_pod_log("p", "default", tail_lines=0, _preload_content=False)
    assert empty.read() == b""
    side = v1.read_namespaced_pod_log("multi", "default", container="sidecar", _preload_content=False)
    assert side.read() == b"s1\ns2\n"

    fake_kube_api.append_logs("p", ["four"])
    tail = v1.read_namespaced_pod_log("p", "default", tail_lines=1, _preload_content=False)
    assert tail.read() == b"four\n"
    assert fake_kube_api.requests[0].query == {"tailLines": "2"}


def test_large_log_is_sent_in_64k_chunks(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    lines = [f"line {i:06d} " + "x" * 90 for i in range(5000)]  # ~500 KiB
    fake_kube_api.add_pod("big", logs=lines)
    response = v1.read_namespaced_pod_log("big", "default", _preload_content=False)
    chunks = list(response.read_chunked())
    expected = "".join(f"{line}\n" for line in lines).encode()
    assert b"".join(chunks) == expected
    assert max(len(c) for c in chunks) == 64 * 1024
    assert len(chunks) == -(-len(expected) // (64 * 1024))


def test_log_query_limits_and_their_validation(fake_kube_api: FakeKubeAPI) -> None:
    fake_kube_api.add_pod("p", logs=["one", "two", "three"])
    log = "/api/v1/namespaces/default/pods/p/log"
    assert _request(fake_kube_api, "GET", f"{log}?limitBytes=6") == (200, b"one\ntw")
    assert _request(fake_kube_api, "GET", f"{log}?tailLines=2&limitBytes=100") == (200, b"two\nthree\n")
    assert _request(fake_kube_api, "GET", f"{log}?tailLines=") == (200, b"one\ntwo\nthree\n")  # blank: no limit
    refused = {
        "tailLines=x": "tailLines and limitBytes must be integers",
        "limitBytes=1.5": "tailLines and limitBytes must be integers",
        "tailLines=-1": "tailLines must be >= 0 and limitBytes must be >= 1",
        "limitBytes=0": "tailLines must be >= 0 and limitBytes must be >= 1",
    }
    for query, message in refused.items():
        status, body = _request(fake_kube_api, "GET", f"{log}?{query}")
        assert (status, json.loads(body)["message"]) == (400, message), query


def test_only_get_is_served_and_head_has_no_body(fake_kube_api: FakeKubeAPI) -> None:
    fake_kube_api.add_pod("p", logs=["x"])
    status, body = _request(fake_kube_api, "DELETE", "/api/v1/namespaces/default/pods/p")
    assert (status, json.loads(body)["reason"]) == (405, "MethodNotAllowed")
    conn = http.client.HTTPConnection("127.0.0.1", fake_kube_api.port, timeout=5)
    try:  # a body after HEAD's headers would be read as the next response on this connection
        headers = {"Authorization": f"Bearer {fake_kube_api.token}"}
        conn.request("HEAD", "/api/v1/namespaces/default/pods/p/log", headers=headers)
        head = conn.getresponse()
        assert (head.status, head.read()) == (405, b"")
        conn.request("GET", "/api/v1/namespaces/default/pods/p/log", headers=headers)
        after = conn.getresponse()
        assert (after.status, after.read()) == (200, b"x\n")
    finally:
        conn.close()
    assert fake_kube_api._pod_logs("default", "p") == {"base": ["x"]}
    assert [(r.method, r.route, r.status) for r in fake_kube_api.requests] == [
        ("DELETE", "get", 405),
        ("HEAD", "log", 405),
        ("GET", "log", 200),
    ]


# -- auth --------------------------------------------------------------------------------------------------


def test_auth_and_token_rotation(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api, tmp_path: Path) -> None:
    fake_kube_api.add_pod("p")
    status, body = raw_get(fake_kube_api, "/api/v1/pods", None)
    assert (status, body["reason"], body["code"]) == (401, "Unauthorized", 401)
    assert raw_get(fake_kube_api, "/api/v1/pods", "wrong")[0] == 401

    old_token = fake_kube_api.token
    fake_kube_api.set_token("rotated-token")
    with pytest.raises(ApiException) as denied:
        v1.list_namespaced_pod("default")
    assert denied.value.status == 401
    assert status_of(denied.value)["kind"] == "Status"

    rebuilt = make_client(fake_kube_api.write_kubeconfig(tmp_path / "rotated"))
    try:
        assert len(client.CoreV1Api(rebuilt).list_namespaced_pod("default").items) == 1
    finally:
        rebuilt.close()

    recorded = repr(fake_kube_api.requests)
    assert old_token not in recorded
    assert "rotated-token" not in recorded
    assert "Bearer" not in recorded
    assert [r.status for r in fake_kube_api.requests] == [401, 401, 401, 200]


# -- connections and bookkeeping ---------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("p", labels={"app": "x"}, logs=["a", "b"])
    for _ in range(10):
        v1.list_namespaced_pod("default", label_selector="app=x")
        v1.read_namespaced_pod_log("p", "default", tail_lines=1)
    assert len(fake_kube_api.requests) == 20
    assert fake_kube_api.connections_opened <= 2
    assert fake_kube_api.stats() == {
        "connections_opened": fake_kube_api.connections_opened,
        "requests": 20,
        "pods": 1,
        "hanging": 0,
    }


def test_requests_are_recorded(fake_kube_api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    fake_kube_api.add_pod("p", logs=["a"])
    before = time.time()
    v1.list_namespaced_pod("default", label_selector="a=b")
    v1.read_namespaced_pod_log("p", "default", container="base")
    v1.read_namespaced_pod("p", "default")
    listed, logged, got = fake_kube_api.requests
    assert (listed.method, listed.path, listed.route, listed.status) == (
        "GET",
        "/api/v1/namespaces/default/pods",
        "list",
        200,
    )
    assert listed.query == {"labelSelector": "a=b"}
    assert (logged.route, logged.query, got.route) == ("log", {"container": "base"}, "get")
    assert before <= listed.timestamp <= logged.timestamp <= time.time()
    fake_kube_api.clear_requests()
    assert fake_kube_api.requests == []


def test_concurrent_clients(fake_kube_api: FakeKubeAPI, fake_kubeconfig: Path) -> None:
    fake_kube_api.add_pod("p", logs=[str(i) for i in range(100)])
    errors: list[BaseException] = []

    def work() -> None:
        api_client = make_client(fake_kubeconfig)
        try:
            v1 = client.CoreV1Api(api_client)
            for _ in range(5):
                data = v1.read_namespaced_pod_log("p", "default", tail_lines=3, _preload_content=False).read()
                assert data == b"97\n98\n99\n"
        except BaseException as exc:
            errors.append(exc)
        finally:
            api_client.close()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(fake_kube_api.requests) == 40
