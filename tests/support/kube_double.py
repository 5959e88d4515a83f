"""The Kubernetes reader wired to the in-process client double, with a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.kubernetes.client import KubeClientCache
from airflow_executor_logs.executors.kubernetes.reader import KubernetesLogReader
from airflow_executor_logs.executors.reader_protocol import ReadContext, ReadReport, to_task_log
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.executors.resolution import ResolvedExecutor
from airflow_executor_logs.metrics import RecordingMetrics
from airflow_executor_logs_testing import task_pod_labels
from airflow_executor_logs_testing.kube_client import FakeClock, KubeClientDouble


@dataclass
class Kube:
    """A reader, its client double and clock, and what a read needs."""

    clock: FakeClock
    api: KubeClientDouble
    reader: KubernetesLogReader
    settings: Settings
    metrics: RecordingMetrics

    def executor(self) -> ResolvedExecutor:
        from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

        return ResolvedExecutor(name=None, executor_cls=KubernetesExecutor)  # type: ignore[arg-type]

    def context(self) -> ReadContext:
        return ReadContext(
            deadline=Deadline(self.settings.read_timeout, self.clock),
            settings=self.settings,
            metrics=self.metrics,
            # as the pipeline builds it: the read's problem counted once, from its report
            report=ReadReport(lambda counter: self.metrics.incr(counter, "KubernetesExecutor")),
        )

    def read(self, ti: Any, try_number: int = 1) -> tuple[list[str], list[str]]:
        """One read in the list form."""
        return to_task_log(self.reader(self.executor(), ti, try_number, self.context()))

    def add_pod(self, ti: Any, lines: list[str], *, name: str = "task-pod", try_number: int = 1) -> None:
        self.api.add_pod(name, task_pod_labels(ti, try_number), lines)


def kube(**settings: Any) -> Kube:
    clock = FakeClock()
    api = KubeClientDouble(clock)
    reader = KubernetesLogReader(clients=KubeClientCache(factory=lambda team: api, clock=clock), clock=clock)
    return Kube(clock, api, reader, Settings(**settings), RecordingMetrics())


def refused() -> BaseException:
    """What the client raises when nothing listens at the API's address."""
    import urllib3

    reason = urllib3.exceptions.NewConnectionError(
        None,  # type: ignore[arg-type]
        "Failed to establish a new connection: [Errno 111] Connection refused",
    )
    return urllib3.exceptions.MaxRetryError(None, "/api/v1/namespaces/default/pods", reason=reason)  # type: ignore[arg-type]
