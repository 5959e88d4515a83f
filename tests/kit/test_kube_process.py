"""The loopback Kubernetes API in its own process (``kube_process``), driven through the admin API."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from airflow_executor_logs_testing import FakeKubeProcess, Fault
from tests.support.kube_http import make_client

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
            assert process.stats() == {"connections_opened": 1, "requests": 3, "pods": 2, "hanging": 0}

            process.inject("*", Fault.hang())
            with pytest.raises(urllib3.exceptions.ReadTimeoutError):
                v1.read_namespaced_pod_log("p", "default", _request_timeout=0.3)
            deadline = time.monotonic() + 30
            while process.stats()["hanging"] != 1:  # the server may read the request after the client gave up
                assert time.monotonic() < deadline, process.stats()
                time.sleep(0.02)
            assert process.heal() == 1  # through the admin API: the held request is answered, faults are gone
            assert v1.read_namespaced_pod_log("p", "default", _preload_content=False).read() == b"a\nb\n"

            process.remove_pod("q")
            process.set_token("rotated", rewrite_kubeconfig=True)
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
