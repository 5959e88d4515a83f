"""The KubernetesExecutor reader against the loopback API: bounded in time, client reused, no secrets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.kubernetes.reader import KubernetesLogReader
from airflow_executor_logs.executors.log_pipeline import process_pipeline, read_running_task_log
from airflow_executor_logs.executors.resilience.coalescing import READ_AHEAD
from airflow_executor_logs.metrics import RecordingMetrics
from airflow_executor_logs_testing import FakeKubeAPI, Fault, serve_task_pod
from tests.support.airflow_state import conf_vars
from tests.support.kube import airflow_pointed_at
from tests.support.task_instances import fake_ti

DEADLINE = 2.0
#: A read cut by the deadline answers well before the 30 s delay or the hang it was cut from, however loaded
#: the machine; how close to the deadline it answers is measured on a fake clock by the unit tests.
BOUND = DEADLINE + 10.0


@pytest.fixture
def kube(fake_kube_api: FakeKubeAPI, fake_kubeconfig: Path) -> Iterator[FakeKubeAPI]:
    with airflow_pointed_at(fake_kube_api, fake_kubeconfig, read_timeout=str(DEADLINE)):
        yield fake_kube_api


def _reader() -> KubernetesLogReader:
    """The Kubernetes reader of this test's (fresh) process pipeline."""
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    found = process_pipeline().registry.find(KubernetesExecutor)
    assert found is not None
    assert isinstance(found.read, KubernetesLogReader)
    return found.read


def _builds() -> int:
    """Kubernetes clients built by this process's pipeline since this was first asked, through its metrics sink."""
    pipeline = process_pipeline()
    if not isinstance(pipeline.metrics, RecordingMetrics):
        pipeline.metrics = RecordingMetrics()
    return pipeline.metrics.count(metrics.CLIENT_BUILDS)


def _timed_read(ti: object, try_number: int = 1) -> tuple[float, list[str], list[str]]:
    started = time.monotonic()
    messages, logs = read_running_task_log(ti, try_number)
    return time.monotonic() - started, messages, logs


def test_reads_the_pod_log(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["hello", "world"])
    messages, logs = read_running_task_log(ti, 1)
    assert messages[-1] == "Found logs through kube API"
    assert "hello" in logs[0]
    assert "world" in logs[0]
    log_request = next(r for r in kube.requests if r.route == "log")
    assert log_request.query["container"] == "base"
    assert log_request.query["tailLines"] == "100"


@pytest.mark.parametrize(
    ("route", "fault"),
    [
        ("list", Fault.hang()),
        ("log", Fault.hang()),
        ("list", Fault.delay(30)),
        ("log", Fault.drip(0.05)),
    ],
    ids=["list-hangs", "log-hangs", "list-slow", "log-drips"],
)
def test_returns_within_the_deadline_with_a_message(kube: FakeKubeAPI, route: str, fault: Fault) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, [f"line {n}" for n in range(100)])
    kube.inject(route, fault)
    elapsed, messages, logs = _timed_read(ti)
    assert elapsed <= BOUND, f"took {elapsed:.2f} s against a {DEADLINE} s deadline"
    assert any(f"timed out after {DEADLINE:g} s" in m for m in messages), messages
    if route == "log" and fault.kind == "drip":
        kept = logs[0].count("line ")
        assert 0 < kept < 100  # the lines read before the deadline are kept


def test_refused_connection_is_quick_and_clear(tmp_path: Path) -> None:
    with FakeKubeAPI() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    with airflow_pointed_at(api, kubeconfig, read_timeout=str(DEADLINE)):  # the server is gone now
        elapsed, messages, _ = _timed_read(fake_ti("KubernetesExecutor"))
    assert elapsed <= BOUND
    assert messages[-1].startswith("Reading from k8s pod logs failed:")
    assert "Connection refused" in messages[-1]


def test_no_retry_storm_against_a_failing_api(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    kube.inject("list", Fault.status(500, "etcd is down"))
    _, messages, _ = _timed_read(ti)
    assert messages[-1] == "Reading from k8s pod logs failed: (500) Internal Server Error: etcd is down"
    assert len([r for r in kube.requests if r.route == "list"]) == 1


def test_client_is_reused_across_reads(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["x"] * 10)
    builds = _builds()
    for _ in range(100):
        messages, _ = read_running_task_log(ti, 1)
        assert messages[-1] == "Found logs through kube API"
    assert _builds() == builds + 1
    assert kube.connections_opened <= 3, kube.connections_opened


def test_client_is_rebuilt_after_its_ttl(kube: FakeKubeAPI) -> None:
    from tests.support.airflow_state import conf_vars

    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["x"])
    with conf_vars({("executor_logs", "client_ttl"): "0.2"}):
        read_running_task_log(ti, 1)
        builds = _builds()
        read_running_task_log(ti, 1)
        assert _builds() == builds
        time.sleep(0.3)
        read_running_task_log(ti, 1)
        assert _builds() == builds + 1


def test_401_rebuilds_the_client_exactly_once(kube: FakeKubeAPI, fake_kubeconfig: Path) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["after rotation"])
    read_running_task_log(ti, 1)
    builds = _builds()

    kube.set_token("rotated-token-0123456789")  # the cluster rotates the token...
    kube.write_kubeconfig(fake_kubeconfig)  # ...and the kubeconfig on disk follows
    messages, logs = read_running_task_log(ti, 1)
    assert messages[-1] == "Found logs through kube API"
    assert "after rotation" in logs[0]
    assert _builds() == builds + 1

    read_running_task_log(ti, 1)
    assert _builds() == builds + 1


def test_a_401_that_persists_is_reported_once_without_the_token(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    old_token = kube.token
    kube.set_token("the-server-wants-another-token")
    builds = _builds()
    messages, _ = read_running_task_log(ti, 1)
    assert messages[-1].startswith("Reading from k8s pod logs failed: (401) Unauthorized")
    assert _builds() == builds + 2  # the first build, and one rebuild: no storm
    assert len([r for r in kube.requests if r.route == "list"]) == 2
    assert old_token not in "".join(messages)


def test_executor_config_that_is_not_a_dict_is_a_message(kube: FakeKubeAPI) -> None:
    messages, _logs = read_running_task_log(fake_ti("KubernetesExecutor", executor_config="garbage"), 1)
    assert messages[-1].startswith("Reading from k8s pod logs failed:")


def _streamed(ti: object, try_number: int = 1) -> tuple[list[str], list[object]]:
    from airflow_executor_logs.executors.log_pipeline import process_pipeline

    return process_pipeline().read_streaming(ti, try_number)


def test_the_streamed_read_is_lazy(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, [f"line {n}" for n in range(10)])
    messages, streams = _streamed(ti)
    assert messages[-1] == "Found logs through kube API"
    assert len(streams) == 1
    assert not isinstance(streams[0], list)  # core gets an iterator, read as it consumes it
    assert [line.strip() for line in streams[0]] == [f"line {n}" for n in range(10)]  # type: ignore[attr-defined]


def test_a_streamed_read_stopped_early_closes_its_connection(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, [f"line {n} " + "x" * 100 for n in range(10_000)])
    with conf_vars({("kubernetes_executor", "running_pod_log_lines"): "10000"}):
        _, streams = _streamed(ti)
        stream = streams[0]
        first_three = [next(stream) for _ in range(3)]  # type: ignore[call-overload]
        first = 10_000 - _tail_lines()
        assert [line.split()[:2] for line in first_three] == [["line", str(first + n)] for n in range(3)]
        opened = kube.connections_opened
        assert kube.open_connections == 1
        # A tail that fits in the shared fetch's read-ahead is read whole while this read is still there,
        # and its connection pooled; the fetch may see the body's end only after a consumer that leaves
        # early has gone (its connection is then dropped), so wait for the fetch to finish first.
        read_whole = _tail_lines() <= READ_AHEAD
        if read_whole:
            _wait_for(lambda: _reader().coalescer.in_flight() == 0)
        stream.close()  # type: ignore[attr-defined]  # core stops reading (the client went away)
        if not read_whole:
            _wait_for(lambda: kube.open_connections == 0)

        serve_task_pod(kube, ti, 2, ["next read"])
        messages, logs = read_running_task_log(ti, 2)
    assert messages[-1] == "Found logs through kube API"
    assert logs == ["next read\n"] or "next read" in logs[0]
    assert kube.connections_opened == opened + (0 if read_whole else 1)  # else on a fresh connection


def test_a_fully_read_stream_returns_its_connection_to_the_pool(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["a", "b"])
    for _ in range(5):
        _, streams = _streamed(ti)
        assert len(list(streams[0])) == 2  # type: ignore[call-overload]
    assert kube.connections_opened == 1
    assert kube.open_connections == 1


def _tail_lines() -> int:
    """10,000 as configured where the provider reads it from config (10.20+); its constant 100 before."""
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from airflow_executor_logs.executors.kubernetes.provider_compat import streams_natively

    return 10_000 if streams_natively(KubernetesExecutor) else 100


_LOGS_OF_ONE_LINE = "next read\n"  # the line as the API sends it, newline kept, as the provider keeps it


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    """Poll ``condition`` until true; the bound is generous, for a loaded machine."""
    give_up = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < give_up, "timed out waiting"
        time.sleep(0.01)


def test_concurrent_reads_of_one_task_share_kubernetes_requests(kube: FakeKubeAPI) -> None:
    """20 reads of one task from 10 threads at once, 0.2 s per Kubernetes answer: at most 8 requests."""
    import threading

    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, [f"line {n}" for n in range(50)])
    kube.inject("*", Fault.delay(0.2))
    answers: list[tuple[list[str], list[str]]] = []
    start = threading.Barrier(10)

    def two_reads() -> None:
        start.wait()
        for _ in range(2):
            answers.append(read_running_task_log(ti, 1))

    with conf_vars({("executor_logs", "max_concurrent_reads"): "20"}):  # not the bulkhead's test
        threads = [threading.Thread(target=two_reads) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(answers) == 20
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0][-1] == "Found logs through kube API"
    requests = [r.route for r in kube.requests if r.route in ("list", "log")]
    assert len(requests) <= 8, requests  # 40 without sharing requests or remembering the pod


def test_the_breaker_answers_at_once_against_a_refusing_api(tmp_path: Path) -> None:
    with FakeKubeAPI() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    with airflow_pointed_at(api, kubeconfig, read_timeout=str(DEADLINE), breaker_threshold="2"):
        ti = fake_ti("KubernetesExecutor")
        for _ in range(2):
            assert "Connection refused" in _timed_read(ti)[1][-1]
        elapsed, messages, _ = _timed_read(ti)
    # "skipped": the open breaker answered without trying to connect
    assert messages[-1].startswith("Reading from k8s pod logs skipped: the Kubernetes API failed 2 times in a row")
    assert "next attempt in 15 s" in messages[-1]
    assert elapsed < DEADLINE


def test_the_breaker_opens_against_a_hung_api_and_then_answers_at_once(kube: FakeKubeAPI) -> None:
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["x"])
    kube.inject("*", Fault.hang())
    with conf_vars({("executor_logs", "breaker_threshold"): "2"}):
        for _ in range(2):
            elapsed, messages, _ = _timed_read(ti)
            assert f"timed out after {DEADLINE:g} s" in messages[-1]
        asked = len(kube.requests)
        elapsed, messages, _ = _timed_read(ti)
    assert messages[-1].startswith("Reading from k8s pod logs skipped: the Kubernetes API failed 2 times in a row")
    assert "(timed out)" in messages[-1]
    # The open breaker answered without a read; it sent one cheap probe call, cut at connect_timeout.
    assert len(kube.requests) <= asked + 1
    assert elapsed < DEADLINE  # and so without waiting for the deadline


def test_the_first_read_after_the_api_heals_gets_fresh_lines_not_the_cooldown(kube: FakeKubeAPI) -> None:
    """An open breaker probes the API in the background (started by reads): recovery is not held to the cool-down."""
    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["the pod's line"])
    kube.inject("*", Fault.hang())
    with conf_vars({("executor_logs", "breaker_threshold"): "2", ("executor_logs", "breaker_cooldown"): "600"}):
        for _ in range(2):
            assert f"timed out after {DEADLINE:g} s" in _timed_read(ti)[1][-1]
        assert _timed_read(ti)[1][-1].startswith("Reading from k8s pod logs skipped")
        kube.clear_faults()  # the API answers again
        time.sleep(3.0)  # the probe in flight (cut at 1 s) has ended, and the next may start
        _, messages, logs = _timed_read(ti)
    assert messages[-1] == "Found logs through kube API"  # 10 minutes of "skipped" before
    assert "the pod's line" in logs[0]


def _kill_plugins(pidfile: Path) -> None:
    """Stop the credential plugins the test started, by the PIDs they wrote."""
    import contextlib
    import os
    import signal

    if not pidfile.exists():
        return
    for pid in {int(line) for line in pidfile.read_text().split() if line.strip()}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_hanging_exec_credential_plugin_costs_a_read_its_deadline_and_shows_the_last_lines(
    kube: FakeKubeAPI, fake_kubeconfig: Path, tmp_path: Path
) -> None:
    """``aws eks get-token`` waiting on a metadata endpoint, say: a real kubeconfig whose exec command hangs."""
    import json
    import stat

    ti = fake_ti("KubernetesExecutor")
    serve_task_pod(kube, ti, 1, ["the pod's line"])
    pidfile = tmp_path / "plugin.pids"
    plugin = tmp_path / "get-token.sh"
    plugin.write_text(f"#!/bin/sh\necho $$ >> {pidfile}\nexec sleep 3600\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}}
    # Every read builds its client (and so runs the plugin): a token rotated in place, say.
    with conf_vars({("executor_logs", "client_ttl"): "0.000001"}):
        assert "the pod's line" in _timed_read(ti)[2][0]  # read once, and remembered
        fake_kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters:\n- name: c\n  cluster:\n    server: {json.dumps(kube.url)}\n"
            f"users:\n- name: u\n  user: {json.dumps(user)}\n"
            "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
        )
        try:
            elapsed, messages, logs = _timed_read(ti)
            assert elapsed <= BOUND, elapsed  # cut at the deadline, not after the plugin's hour
            second, _, _ = _timed_read(ti)  # a later read is not stuck behind the hung build either
            assert second <= BOUND, second
        finally:
            _kill_plugins(pidfile)
    assert pidfile.exists()  # the plugin did run
    assert messages[-1].startswith("Reading from k8s pod logs timed out after 2 s ([executor_logs] read_timeout): ")
    assert "the Kubernetes client was not built" in messages[-1]
    lines = [line for line in "\n".join(logs).splitlines() if line]
    assert "the pod's line" in lines[0]  # the last good lines...
    warning = json.loads(lines[-1])  # ...then what failed
    assert warning["level"] == "warning"
    assert warning["event"].startswith("Kubernetes credentials timed out (2 s): lines above from ")
