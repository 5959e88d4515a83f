"""
``doctor check`` on a real sqlite metadata DB with a RUNNING task and the loopback Kubernetes API: healthy,
then broken one way at a time, through the command's ``main`` (text and ``--json``, validated by its schema).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from airflow_executor_logs.cli import main
from airflow_executor_logs.cli.doctor.check.results import SCHEMA
from airflow_executor_logs.cli.doctor.check.running import running_tasks
from tests.integration.conftest import SeededCluster
from tests.support.airflow_state import conf_vars
from tests.support.kube import airflow_pointed_at
from tests.support.log_server import LogServerDouble

OURS = "airflow_executor_logs.logging_config.LOGGING_CONFIG"


@pytest.fixture
def deployment(seeded_cluster: SeededCluster, tmp_path: Path) -> Iterator[SeededCluster]:
    """Our logging config (``airflow.task`` logging through it), the Kubernetes executor on the loopback API."""
    from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler

    settings = {"connect_timeout": "0.5", "read_timeout": "1.5"}
    extra = {("logging", "logging_config_class"): OURS, ("logging", "remote_logging"): "False"}
    task_logger = logging.getLogger("airflow.task")
    saved = task_logger.handlers[:]
    task_logger.handlers = [ExecutorLogsFileTaskHandler(base_log_folder=str(tmp_path))]
    try:
        with airflow_pointed_at(seeded_cluster.kube, seeded_cluster.kubeconfig, **settings), conf_vars(extra):
            yield seeded_cluster
    finally:
        task_logger.handlers = saved
    seeded_cluster.kube.allow_all()
    seeded_cluster.kube.clear_faults()


@contextlib.contextmanager
def running_on(cluster: SeededCluster, executor: str, hostname: str) -> Iterator[None]:
    """The seeded RUNNING task instance, on ``executor`` at ``hostname`` for the block (then put back)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    def update(values: dict[str, Any]) -> dict[str, Any]:
        with create_session() as session:
            ti = session.query(TaskInstance).filter_by(dag_id=cluster.dag_id, run_id=cluster.run_id).one()
            before = {key: getattr(ti, key) for key in values}
            for key, value in values.items():
                setattr(ti, key, value)
        return before

    before = update({"executor": executor, "hostname": hostname})
    try:
        yield
    finally:
        update(before)


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    code = main(["doctor", "check", "--tmpdir", str(tmp_path), *flags])
    return code, capsys.readouterr().out


def _by_check(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        check["check"] + (f" {check['subject']}" if check["subject"] else ""): check for check in document["checks"]
    }


def test_healthy(deployment: SeededCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(tmp_path, capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert all(line.startswith(("ok ", "      ")) for line in lines[:-1]), out
    assert lines[-1] == "6 ok, 0 warn, 0 fail."
    code, out = _check(tmp_path, capsys, "--json")
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    assert code == document["exit_code"] == 0
    assert list(_by_check(document)) == [
        "enabled",
        "remote-logging",
        "executor KubernetesExecutor",
        "kubernetes default",
        "served-logs",
        "processes",
    ]


def test_the_running_task_is_read_from_the_db(deployment: SeededCluster) -> None:
    [task] = running_tasks()
    assert (task.ti.dag_id, task.ti.run_id) == (deployment.dag_id, deployment.run_id)
    assert task.rel_path is not None
    assert task.url == f"http://{task.ti.hostname}:8793/log/{task.rel_path}"


def test_broken_in_every_way_at_once(
    deployment: SeededCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "lost_remote_task_log.py"
    module.write_text(
        "from airflow_executor_logs.logging_config import LOGGING_CONFIG\n"  # wrapped, but REMOTE_TASK_LOG not kept
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS", "lost_remote_task_log.LOGGING_CONFIG")
    monkeypatch.setenv("AIRFLOW__LOGGING__REMOTE_LOGGING", "True")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor,NoSuchExecutor")
    deployment.kube.deny("get", "pods/log", namespace="default")
    code, out = _check(tmp_path, capsys, "--json")
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    assert code == document["exit_code"] == 1
    checks = _by_check(document)
    assert checks["enabled"]["status"] == "ok"
    assert checks["remote-logging"]["status"] == "fail"
    assert checks["remote-logging"]["fix"].startswith("in lost_remote_task_log: from airflow_executor_logs")
    assert checks["executor NoSuchExecutor"]["status"] == "fail"
    assert checks["kubernetes default"]["status"] == "fail"
    assert 'resources: ["pods/log"], verbs: ["get"]' in checks["kubernetes default"]["fix"]
    assert document["counts"]["fail"] == 3, [(n, c["summary"]) for n, c in checks.items() if c["status"] == "fail"]


@pytest.mark.parametrize(
    ("hostname", "problem", "setting"),
    [
        ("", "the hostname is empty", "[core] hostname_callable"),
        ("no-such-worker.invalid", "no-such-worker.invalid does not resolve", "[core] hostname_callable"),
        ("127.0.0.1", "refuses the signed request (403)", "[api] secret_key"),
    ],
    ids=["empty", "unresolvable", "403"],
)
def test_served_logs_of_a_running_local_task(
    deployment: SeededCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hostname: str,
    problem: str,
    setting: str,
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor,LocalExecutor")
    with (
        LogServerDouble("a worker with a secret of its own " * 2) as worker,
        running_on(deployment, "LocalExecutor", hostname),
    ):
        monkeypatch.setenv("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(worker.port))
        code, out = _check(tmp_path, capsys)
    assert code == 1, out
    lines = out.splitlines()
    index = next(n for n, line in enumerate(lines) if line.startswith("fail"))
    line, fix = lines[index], lines[index + 1]
    assert line.startswith("fail  served-logs: 1 running task(s) on 1 host(s), 1 failing: "), out
    assert problem in line
    assert fix.startswith(f"      fix: check {setting}")


def test_served_logs_of_a_healthy_local_task(
    deployment: SeededCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor,LocalExecutor")
    with (
        LogServerDouble(os.environ["AIRFLOW__API__SECRET_KEY"]) as worker,
        running_on(deployment, "LocalExecutor", "127.0.0.1"),
    ):
        monkeypatch.setenv("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(worker.port))
        code, out = _check(tmp_path, capsys)
    assert code == 0, out
    assert "ok    served-logs: 1 running task(s) on 1 host(s): every log server answers a signed request" in out
    assert worker.requests == 1
