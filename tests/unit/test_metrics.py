"""Counters through Airflow's Stats, tagged with the executor class: reads, fallbacks, timeouts, failures, pressure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.metrics import Metrics
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.kube_double import kube
from tests.support.processes import HELPER, start_the_helper
from tests.support.task_instances import fake_ti


@pytest.fixture(autouse=True, scope="module")
def _helper_is_up() -> None:
    start_the_helper()  # the fallback reads' 1 s deadline is the read's, not the helper's first start


@pytest.fixture
def counted() -> Iterator[mock.MagicMock]:
    from airflow_executor_logs.version_compat import stats

    with conf_vars({("core", "executor"): fx.all_executors_setting()}), mock.patch.object(stats(), "incr") as incr:
        yield incr


def read_running_task_log(ti: object, try_number: int) -> tuple[list[str], list[str]]:
    return ExecutorLogPipeline(settings=Settings(fallback_timeout=1), helper=HELPER).read(ti, try_number)


def _counts(incr: mock.MagicMock) -> list[tuple[str, str]]:
    return [(call.args[0], call.kwargs["tags"]["executor"]) for call in incr.call_args_list]


def test_class_level_read(counted: mock.MagicMock) -> None:
    read_running_task_log(fake_ti("NativeReaderExecutor"), 1)
    assert _counts(counted) == [(metrics.CLASS_READS, "NativeReaderExecutor")]


def test_fallback_read(counted: mock.MagicMock) -> None:
    read_running_task_log(fake_ti("CountingExecutor"), 1)
    assert _counts(counted) == [(metrics.FALLBACK_READS, "CountingExecutor")]


def test_fallback_timeout(counted: mock.MagicMock) -> None:
    read_running_task_log(fake_ti("GetLogHangsExecutor"), 1)
    assert _counts(counted) == [
        (metrics.FALLBACK_READS, "GetLogHangsExecutor"),
        (metrics.TIMEOUTS, "GetLogHangsExecutor"),
    ]


def test_fallback_failure(counted: mock.MagicMock) -> None:
    read_running_task_log(fake_ti("GetLogRaisesExecutor"), 1)
    assert _counts(counted)[-1] == (metrics.FAILURES, "GetLogRaisesExecutor")


def test_unknown_executor_is_a_failure(counted: mock.MagicMock) -> None:
    read_running_task_log(fake_ti("Nope"), 1)
    assert _counts(counted) == [(metrics.FAILURES, "Nope")]


def test_no_override_counts_nothing(counted: mock.MagicMock) -> None:
    read_running_task_log(fake_ti("PlainExecutor"), 1)
    assert _counts(counted) == []


def test_a_broken_stats_backend_does_not_break_reads(counted: mock.MagicMock) -> None:
    counted.side_effect = RuntimeError("statsd is down")
    assert read_running_task_log(fake_ti("NativeReaderExecutor", task_id="x"), 1)[0] == ["class-level read of x"]


def test_emitting_does_not_import_the_deprecated_stats_shim() -> None:
    """Where the Task SDK has ``Stats`` (3.2+), ``airflow.stats`` is a shim that warns on import: not used."""
    import subprocess
    import sys

    script = (
        "import importlib.util, sys\n"
        "from airflow_executor_logs import metrics\n"
        "metrics.Metrics().incr(metrics.COALESCED_READS, 'KubernetesExecutor')\n"
        "print(importlib.util.find_spec('airflow.sdk.observability') is not None, 'airflow.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    has_sdk_stats, imported_shim = out.stdout.split()[-2:]
    assert imported_shim == ("False" if has_sdk_stats == "True" else "True")


@pytest.mark.parametrize(
    ("executor", "tag"),
    [(fx.CountingExecutor, "CountingExecutor"), ("KubernetesExecutor", "KubernetesExecutor"), (None, "unknown")],
)
def test_the_executor_tag(counted: mock.MagicMock, executor: type | str | None, tag: str) -> None:
    Metrics().incr(metrics.CLASS_READS, executor)
    counted.assert_called_once_with(metrics.CLASS_READS, tags={"executor": tag})


def test_pod_cache_hits_and_breaker_openings_go_through_stats(counted: mock.MagicMock) -> None:
    k = kube(breaker_threshold=1)
    k.metrics = Metrics()  # type: ignore[assignment]
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["x"])
    k.read(ti)
    k.read(ti)  # the pod is remembered
    k.api.fail("log", TimeoutError("timed out"), times=None)
    k.read(ti)  # opens the breaker
    k.read(ti)  # refused (the probe it starts fails too)
    assert _counts(counted) == [
        (metrics.CLIENT_BUILDS, "KubernetesExecutor"),
        (metrics.POD_CACHE_HITS, "KubernetesExecutor"),
        (metrics.BREAKER_OPENINGS, "KubernetesExecutor"),
        (metrics.TIMEOUTS, "KubernetesExecutor"),
        (metrics.BREAKER_REFUSALS, "KubernetesExecutor"),
    ]


def test_answers_given_without_a_read_go_through_stats(counted: mock.MagicMock) -> None:
    """Reused answers (and of them, stand-ins and shared reads) are emitted, not only kept for tests."""
    pipeline = ExecutorLogPipeline(settings=Settings(answer_ttl=60.0))
    pipeline.register(fx.CountingExecutor, lambda cls, ti, try_number: (["ok"], ["line"]))
    ti = fake_ti("CountingExecutor")
    assert pipeline.read(ti, 1) == pipeline.read(ti, 1)
    assert _counts(counted) == [
        (metrics.CLASS_READS, "CountingExecutor"),
        (metrics.REUSED_ANSWERS, "CountingExecutor"),
    ]


def test_the_operations_guide_lists_every_metric_and_no_other() -> None:
    """docs/operations.md's metrics table is the metrics this module declares, so the two cannot drift."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    listed = set(re.findall(r"^\| `(executor_logs\.\w+)` \|", guide, flags=re.MULTILINE))
    declared = {value for name, value in vars(metrics).items() if name.isupper() and isinstance(value, str)}
    assert declared
    assert listed == declared
