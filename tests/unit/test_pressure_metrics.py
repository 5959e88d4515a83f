"""The pressure counters reach Airflow's Stats, tagged with the executor class."""

from __future__ import annotations

from unittest import mock

from airflow_executor_logs import metrics
from airflow_executor_logs.metrics import Metrics
from tests.support.kube_double import kube
from tests.support.task_instances import fake_ti


def test_pod_cache_hits_and_breaker_openings_go_through_stats() -> None:
    from airflow_executor_logs.version_compat import stats

    k = kube(breaker_threshold=1)
    k.metrics = Metrics()  # type: ignore[assignment]
    ti = fake_ti("KubernetesExecutor")
    k.add_pod(ti, ["x"])
    with mock.patch.object(stats(), "incr") as incr:
        k.read(ti)
        k.read(ti)  # the pod is remembered
        k.api.fail("log", TimeoutError("timed out"))
        k.read(ti)  # opens the breaker
        k.read(ti)  # refused
    counted = [(call.args[0], call.kwargs["tags"]) for call in incr.call_args_list]
    tags = {"executor": "KubernetesExecutor"}
    for metric in (metrics.POD_CACHE_HITS, metrics.BREAKER_OPENINGS, metrics.BREAKER_REFUSALS):
        assert (metric, tags) in counted, counted
