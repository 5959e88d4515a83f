"""The Kubernetes reader on the in-process client double: the provider's answers, bounded, one client."""

from __future__ import annotations

import re
import threading
import time

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs_testing.kube_client import api_exception
from tests.support.kube_double import kube
from tests.support.task_instances import fake_ti

FIRST = "Attempting to fetch logs from pod worker-pod-1 through kube API"


def test_reads_the_pod_log_with_the_providers_messages() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["hello", "world"])
    assert k.read(ti) == ([FIRST, "Found logs through kube API"], ["hello\n\nworld\n"])
    log_call = k.api.calls[-1]
    assert (log_call.route, log_call.name, log_call.tail_lines) == ("log", "task-pod", 100)
    assert log_call.extra["_preload_content"] is False


def test_the_stream_is_lazy_and_an_early_stop_gives_the_response_up() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, [f"line {n}" for n in range(10)])
    messages, (stream,) = k.reader(k.executor(), ti, 1, k.context())
    assert messages[-1] == "Found logs through kube API"
    assert next(stream) == "line 0\n"
    stream.close()  # type: ignore[attr-defined]
    give_up = time.monotonic() + 10
    while k.api.open_responses and time.monotonic() < give_up:  # the fetch thread closes it
        threading.Event().wait(0.001)
    assert k.api.open_responses == 0


def test_no_pod_and_two_pods_are_the_providers_messages() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    messages, _ = k.read(ti)
    assert messages == [FIRST, f"Reading from k8s pod logs failed: ('Cannot find pod for ti %s', {ti!r})"]
    k.add_pod(ti, ["a"], name="pod-a")
    k.add_pod(ti, ["b"], name="pod-b")
    assert k.read(ti)[0][-1].startswith("Reading from k8s pod logs failed: ('Found multiple pods for ti %s: %s'")
    assert len(k.reader.pods) == 0  # neither answer is remembered


def test_an_error_status_is_reported_once_without_retries() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.api.fail("list", api_exception(500, "etcd is down"))
    assert k.read(ti)[0][-1] == "Reading from k8s pod logs failed: (500) Internal Server Error: etcd is down"
    assert k.api.count() == 1


def test_a_slow_api_is_cut_at_the_deadline() -> None:
    k = kube(read_timeout=2.0)
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["x"])
    k.api.slow("log", 30.0)
    messages, logs = k.read(ti)
    assert messages[-1] == ("Reading from k8s pod logs timed out after 2 s ([executor_logs] read_timeout)")
    assert logs == [""]


def test_the_client_is_built_once() -> None:
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["x"])
    for _ in range(20):
        k.read(ti)
    assert k.metrics.count(metrics.CLIENT_BUILDS) == 1


def test_the_read_reports_how_it_went() -> None:
    """Success, a timeout, a failure, and a refusal by the open breaker, each on the context's report."""
    from airflow_executor_logs.executors.reader_protocol import Outcome, to_task_log

    k = kube(read_timeout=2.0, breaker_threshold=1)
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["x"])

    def outcome() -> tuple[Outcome, str]:
        context = k.context()
        to_task_log(k.reader(k.executor(), ti, 1, context))
        return context.report.outcome, context.report.detail

    assert outcome() == (Outcome.SUCCESS, "")
    k.api.fail("log", api_exception(403, "forbidden"))
    assert outcome() == (Outcome.FAILED, "Reading from k8s pod logs failed: (403) Forbidden: forbidden")
    k.api.slow("log", 30.0)
    assert outcome() == (
        Outcome.TIMEOUT,
        "Reading from k8s pod logs timed out after 2 s ([executor_logs] read_timeout)",
    )
    # The timeout reached the threshold of 1: the breaker opened; the API answers again, so the probe the
    # next read starts closes it, and that read goes through.
    assert k.reader.breakers.state(k.reader.cluster(None)) == "open"
    assert outcome() == (Outcome.SUCCESS, "")


def test_escape_codes_are_removed_as_core_removes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.utils.log import logging_mixin

    lines = ["\x1b[31mred\x1b[0m text", "plain", "\x1b[1;32mbold green\x1b[0m"]
    k = kube()
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, lines)
    core = [logging_mixin.remove_escape_codes(f"{line}\n") for line in lines]
    assert k.read(ti)[1] == ["\n".join(core)]
    # A pattern this reader does not know (a later core's): core's function on every line, ESC or not.
    seen: list[str] = []
    monkeypatch.setattr(logging_mixin, "ANSI_ESCAPE", re.compile("plain"))
    monkeypatch.setattr(logging_mixin, "remove_escape_codes", lambda text: seen.append(text) or text.upper())
    assert k.read(ti)[1] == ["\n".join(f"{line}\n".upper() for line in lines)]
    assert seen == [f"{line}\n" for line in lines]
