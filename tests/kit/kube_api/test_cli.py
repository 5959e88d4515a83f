"""``python -m airflow_executor_logs_testing.kube_api``: serve the loopback API from the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from airflow_executor_logs.utils.processes import stop_processes
from tests.support.kube_http import make_client


def test_serve_command_line_with_pods_file(tmp_path: Path) -> None:
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps([{"name": "p", "namespace": "ns", "logs": {"base": ["hi"]}}]))
    kubeconfig = tmp_path / "kubeconfig"
    module = "airflow_executor_logs_testing.kube_api"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--kubeconfig", str(kubeconfig), "--pods", str(pods)],
        stdout=subprocess.PIPE,
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
        stop_processes([proc])  # by PID, only if the test failed before it exited
        if proc.stdout is not None:
            proc.stdout.close()
