"""The served-logs check: hostname set and resolving, log server port open, core's signed request not refused."""

from __future__ import annotations

import os
import time

import pytest

from airflow_executor_logs.cli.doctor.check.running import RunningTask
from airflow_executor_logs.cli.doctor.check.served_logs import HOSTNAME, PORT, SECRET, check_served_logs
from airflow_executor_logs.config import Settings
from tests.support.log_server import LogServerDouble, full_backlog_listener
from tests.support.task_instances import fake_ti
from tests.unit.cli.doctor.check.conftest import CONNECT, READ

REL = "dag_id=dag/run_id=r/task_id=task/attempt=1.log"
#: Hosts are probed at once: resolve and connect (connect_timeout each), then the request (read deadline).
BOUND = 2 * CONNECT + READ + 1.0


def _task(hostname: str, port: int | None = None, **fields: object) -> RunningTask:
    url = None if not hostname else f"http://{hostname}:{port or 8793}/log/{REL}"
    return RunningTask(fake_ti("LocalExecutor", hostname=hostname, **fields), url, REL if url else None)


def _timed(tasks: list[RunningTask], settings: Settings) -> tuple[str, str, str | None, dict, float]:
    started = time.monotonic()
    result = check_served_logs(tasks, settings)
    return result.status, result.summary, result.fix, dict(result.details), time.monotonic() - started


def test_healthy(settings: Settings) -> None:
    with LogServerDouble(os.environ["AIRFLOW__API__SECRET_KEY"]) as worker:
        status, summary, fix, _, _ = _timed(
            [_task("127.0.0.1", worker.port), _task("127.0.0.1", worker.port)], settings
        )
    assert (status, summary, fix) == (
        "ok",
        "2 running task(s) on 1 host(s): every log server answers a signed request",
        None,
    )
    assert worker.requests == 1  # one signed request per host


def test_no_running_task_on_the_served_path(settings: Settings) -> None:
    status, summary, _, _, _ = _timed([], settings)
    assert (status, summary) == ("ok", "no RUNNING task reads its log from a worker's log server")


def test_an_empty_hostname(settings: Settings) -> None:
    status, summary, fix, _, _ = _timed([_task("")], settings)
    assert status == "fail"
    assert summary == "1 running task(s) on 1 host(s), 1 failing: the hostname is empty (1 task(s))"
    assert fix == f"check {HOSTNAME}"


def test_a_hostname_that_does_not_resolve(settings: Settings) -> None:
    status, summary, fix, _, elapsed = _timed([_task("no-such-worker.invalid")], settings)
    assert status == "fail"
    assert "no-such-worker.invalid does not resolve" in summary
    assert fix == f"check {HOSTNAME}"
    assert elapsed <= BOUND, elapsed


def test_a_log_server_that_refuses_the_signature(settings: Settings) -> None:
    with LogServerDouble("the worker's own secret, another one" * 2) as worker:
        status, summary, fix, details, _ = _timed([_task("127.0.0.1", worker.port)], settings)
    assert status == "fail"
    assert f"127.0.0.1:{worker.port} refuses the signed request (403)" in summary
    assert fix == f"check {SECRET}"
    assert details["hosts"][0]["status"] == 403


def test_a_closed_port(settings: Settings) -> None:
    with LogServerDouble("x") as gone:
        port = gone.port
    status, summary, fix, _, _ = _timed([_task("127.0.0.1", port)], settings)
    assert status == "fail"
    assert f"127.0.0.1:{port} does not accept a connection" in summary
    assert fix == f"check {PORT}"


def test_every_network_step_hanging_is_bounded(settings: Settings) -> None:
    listener, fillers = full_backlog_listener()
    try:
        with LogServerDouble("x", hang=True) as hanging:
            tasks = [_task("127.0.0.1", listener.getsockname()[1]), _task("localhost", hanging.port)]
            status, _summary, _, details, elapsed = _timed(tasks, settings)
    finally:
        for sock in [listener, *fillers]:
            sock.close()
    assert status == "fail"
    problems = [host["problem"] for host in details["hosts"]]
    assert any("does not accept a connection (no connection within" in problem for problem in problems), problems
    assert any(f"did not answer within {READ:g} s" in problem for problem in problems), problems
    assert elapsed <= BOUND, elapsed


def test_failing_hosts_are_counted_and_the_first_shown(settings: Settings) -> None:
    tasks = [_task("")] + [_task(f"w{n}.invalid") for n in range(4)]
    status, summary, fix, _, _ = _timed(tasks, settings)
    assert status == "fail"
    assert summary.startswith("5 running task(s) on 5 host(s), 5 failing: the hostname is empty (1 task(s)); ")
    assert summary.endswith("; and 2 more")
    assert fix == f"check {HOSTNAME}"


def test_no_signing_secret(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__SECRET_KEY", "")
    status, summary, fix, _, _ = _timed([_task("127.0.0.1")], settings)
    assert status == "fail"
    assert summary.startswith("[api] secret_key is not set")
    assert fix == f"set {SECRET}"


def test_a_task_whose_log_address_does_not_render(settings: Settings) -> None:
    task = RunningTask(fake_ti("LocalExecutor", hostname="worker-1"), None, None)
    status, summary, fix, _, _ = _timed([task], settings)
    assert status == "fail"
    assert "worker-1: core builds no log-server address" in summary
    assert fix == "check [logging] log_filename_template"
