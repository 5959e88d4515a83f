"""
``doctor check`` where a real ``airflow api-server`` of the sandbox runs, with its environment: healthy, then
with the Kubernetes API hanging (the check's network part stays within 3 x connect_timeout + read_timeout).

The sandbox seeds tasks on executors that the check must report (a short-lived one, one that does not exist,
served-log tasks on a hostname that does not resolve), so its exit code is 1 in both runs; what changes is the
Kubernetes line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_executor_logs_testing import Fault
from tests.e2e.conftest import FALLBACK_RUN, UNKNOWN_RUN, Deployment
from tests.support.process_control import stop_process_tree

pytestmark = [pytest.mark.e2e]

CONNECT, READ = 0.5, 2.0
BOUNDS = {"AIRFLOW__EXECUTOR_LOGS__CONNECT_TIMEOUT": str(CONNECT), "AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT": str(READ)}


def _doctor_check(env: dict[str, str], tmpdir: str) -> tuple[int, dict[str, dict[str, Any]], dict[str, Any]]:
    cmd = [sys.executable, "-m", "airflow_executor_logs", "doctor", "check", "--json", "--tmpdir", tmpdir]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        stop_process_tree(proc, grace=5.0)
    assert proc.returncode in (0, 1), err[-3000:]
    document = json.loads(out)
    checks = {c["check"] + (f" {c['subject']}" if c["subject"] else ""): c for c in document["checks"]}
    return proc.returncode, checks, document


def test_doctor_check_beside_a_real_api_server(deployment: Deployment) -> None:
    with deployment.sandbox.api_server(workers=1, extra_env=BOUNDS) as server:
        assert server.fetch_task_log().status_code == 200
        env = server.env()
        code, checks, _ = _doctor_check(env, server.tmpdir)
        assert code == 1
        assert checks["enabled"]["status"] == "ok", checks["enabled"]
        assert checks["kubernetes default"]["status"] == "ok", checks["kubernetes default"]
        assert checks["executor KubernetesExecutor"]["status"] == "ok"
        assert checks[f"executor {FALLBACK_RUN[1]}"]["status"] == "warn"  # a short-lived executor per read
        unknown = next(c for name, c in checks.items() if name.startswith(f"executor {UNKNOWN_RUN[1]}"))
        assert unknown["status"] == "fail"
        assert unknown["summary"].startswith("Executor logs unavailable: Cannot find executor 'NoSuchExecutor'")
        assert checks["served-logs"]["status"] == "fail"  # the seeded hostname is a pod's name: it does not resolve
        assert "does not resolve" in checks["served-logs"]["summary"]
        assert checks["processes"]["status"] == "ok"

        deployment.kube.inject("*", Fault.hang())
        try:
            code, checks, document = _doctor_check(env, server.tmpdir)
            assert server.fetch_task_log().status_code == 200  # the log view still answers meanwhile
        finally:
            deployment.kube.heal()
    kubernetes = checks["kubernetes default"]
    assert kubernetes["status"] == "fail"
    assert f"does not answer /version: no answer within {READ:g} s" in kubernetes["summary"]
    assert document["network_seconds"] <= 3 * CONNECT + READ, document["network_seconds"]
