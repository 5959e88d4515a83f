"""Tests for the fake Kubernetes API server, driven by the real ``kubernetes`` client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from airflow_executor_logs.testing import (
    FakeKubeAPI,
    FakeKubeProcess,
    Fault,
    LabelSelectorError,
    parse_label_selector,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SRC = Path(__file__).resolve().parents[2] / "src"


def make_client(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient built exactly like production code builds one, without urllib3 retries."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    cfg.retries = False  # one request per call, so fault counts and timings are exact
    return client.ApiClient(cfg)


@pytest.fixture
def api_client(fake_kubeconfig: Path) -> Iterator[client.ApiClient]:
    api_client = make_client(fake_kubeconfig)
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def raw_get(api: FakeKubeAPI, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# -- label selectors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("   ", {"a": "1"}, True),
        ("a=1", {"a": "1"}, True),
        ("a=1", {"a": "2"}, False),
        ("a=1", {}, False),
        ("a==1", {"a": "1"}, True),
        ("a!=1", {"a": "2"}, True),
        ("a!=1", {}, True),
        ("a!=1", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "1"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("a in (1,2)", {"a": "2"}, True),
        ("a in (1,2)", {"a": "3"}, False),
        ("a in (1,2)", {}, False),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("a=", {"a": ""}, True),
        (" a = 1 , b in ( x , y ) , !c , d ", {"a": "1", "b": "y", "d": "z"}, True),
        ("a=1,b in (x,y),!c", {"a": "1", "b": "y", "c": "z"}, False),
        (
            "example.com/app=web,app.kubernetes.io/name",
            {"example.com/app": "web", "app.kubernetes.io/name": "x"},
            True,
        ),
        (
            "dag_id=my_dag,try_number=1,airflow-worker",
            {"dag_id": "my_dag", "try_number": "1", "airflow-worker": "7"},
            True,
        ),
    ],
)
def test_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


def test_selector_structure() -> None:
    selector = parse_label_selector("a in (x, y), !b")
    assert [(r.key, r.operator, r.values) for r in selector.requirements] == [
        ("a", "in", frozenset({"x", "y"})),
        ("b", "!", frozenset()),
    ]
    assert parse_label_selector(None).matches(None)


@pytest.mark.parametrize(
    "selector",
    [
        ",",
        "a=1,",
        ",a=1",
        "a=1,,b=2",
        "!",
        "a b",
        "a=1=2",
        "a!1",
        "a in 1",
        "a in (1",
        "a in ()",
        "a in (1,,2)",
        "a in (1,)",
        "a notin (1) b",
        "a@b=1",
        "-a=1",
        "a=-x",
        "a=(",
        "a=" + "x" * 64,
        "x" * 64 + "=1",
        "Bad_Prefix/a=1",
    ],
)
def test_selector_malformed(selector: str) -> None:
    with pytest.raises(LabelSelectorError, match="unable to parse requirement"):
        parse_label_selector(selector)


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


def test_kubeconfig_extra_user_fields(fake_kube_api: FakeKubeAPI, tmp_path: Path) -> None:
    path = fake_kube_api.write_kubeconfig(tmp_path / "sub" / "config", {"client-certificate-data": "Zm9v"})
    loaded = yaml.safe_load(path.read_text())
    assert loaded["current-context"] == "fake-kube-api"
    assert loaded["clusters"][0]["cluster"]["server"] == fake_kube_api.url
    assert loaded["users"][0]["user"] == {"token": fake_kube_api.token, "client-certificate-data": "Zm9v"}


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


def test_inject_validates_route(fake_kube_api: FakeKubeAPI) -> None:
    with pytest.raises(ValueError, match="route"):
        fake_kube_api.inject("logs", Fault.hang())
    with pytest.raises(ValueError, match="times"):
        fake_kube_api.inject("log", Fault.hang(), times=0)
    assert Fault.from_dict(Fault.status(500, "x").to_dict()) == Fault.status(500, "x")


# -- separate process --------------------------------------------------------------------------------------


def test_fake_kube_process(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = FakeKubeProcess(kubeconfig, pods=[{"name": "p", "labels": {"app": "x"}, "logs": ["a", "b"]}])
    try:
        process.start()
        pid = process.pid
        assert psutil.pid_exists(pid)
        assert process.url == f"http://127.0.0.1:{process.port}"

        api_client = make_client(kubeconfig)
        try:
            v1 = client.CoreV1Api(api_client)
            assert [p.metadata.name for p in v1.list_namespaced_pod("default", label_selector="app=x").items] == ["p"]
            process.add_pod("q", logs={"main": ["m"]})
            assert v1.read_namespaced_pod_log("q", "default", _preload_content=False).read() == b"m\n"

            process.inject("log", Fault.status(500, "boom"), times=1)
            with pytest.raises(ApiException) as failed:
                v1.read_namespaced_pod_log("p", "default")
            assert failed.value.status == 500
            process.clear_faults()

            requests = process.requests()
            assert [(r.route, r.status) for r in requests] == [("list", 200), ("log", 200), ("log", 500)]
            assert process.stats() == {"connections_opened": 1, "requests": 3, "pods": 2}

            process.remove_pod("q")
            process.set_token("rotated")
            with pytest.raises(ApiException) as denied:
                v1.list_namespaced_pod("default")
            assert denied.value.status == 401
        finally:
            api_client.close()

        rebuilt = make_client(kubeconfig)  # the kubeconfig was rewritten with the new token
        try:
            assert [p.metadata.name for p in client.CoreV1Api(rebuilt).list_pod_for_all_namespaces().items] == ["p"]
        finally:
            rebuilt.close()
    finally:
        process.stop()
    assert not psutil.pid_exists(pid)
    assert process.returncode == 0
    process.stop()  # idempotent


def test_serve_command_line_with_pods_file(tmp_path: Path) -> None:
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps([{"name": "p", "namespace": "ns", "logs": {"base": ["hi"]}}]))
    kubeconfig = tmp_path / "kubeconfig"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    module = "airflow_executor_logs.testing.kube_api"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--kubeconfig", str(kubeconfig), "--pods", str(pods)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["pid"] == proc.pid
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}"
        api_client = make_client(kubeconfig)
        try:
            log = client.CoreV1Api(api_client).read_namespaced_pod_log("p", "ns", _preload_content=False)
            assert log.read() == b"hi\n"
        finally:
            api_client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
