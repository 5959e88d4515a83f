"""Counters emitted through Airflow's ``Stats``, tagged with the executor class name."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

log = logging.getLogger(__name__)

CLASS_READS = "executor_logs.class_reads"
FALLBACK_READS = "executor_logs.fallback_reads"
TIMEOUTS = "executor_logs.timeouts"
FAILURES = "executor_logs.failures"
#: Reads answered "busy" by the bulkhead.
BULKHEAD_REFUSALS = "executor_logs.bulkhead_refusals"
#: Times a cluster's circuit breaker opened (or re-opened after a failed probe).
BREAKER_OPENINGS = "executor_logs.breaker_openings"
#: Reads answered "skipped" by an open breaker.
BREAKER_REFUSALS = "executor_logs.breaker_refusals"
#: Reads that found their pod in the pod cache (one Kubernetes call instead of two).
POD_CACHE_HITS = "executor_logs.pod_cache_hits"
#: Reads that shared another read's Kubernetes request.
COALESCED_READS = "executor_logs.coalesced_reads"
#: Polls answered without a read: an answer kept within ``answer_ttl``, a stand-in or a shared read's answer.
REUSED_ANSWERS = "executor_logs.reused_answers"
#: Of those, polls given the previous answer while its refresh was in flight.
STAND_INS = "executor_logs.stand_ins"
#: Of those, polls given the answer of the identical read in flight they waited for (a short-lived executor's).
SHARED_READS = "executor_logs.shared_reads"
#: Kubernetes clients built (a kubeconfig or in-cluster credentials read, an ``exec`` plugin run).
CLIENT_BUILDS = "executor_logs.client_builds"


__all__ = [
    "BREAKER_OPENINGS",
    "BREAKER_REFUSALS",
    "BULKHEAD_REFUSALS",
    "CLASS_READS",
    "CLIENT_BUILDS",
    "COALESCED_READS",
    "FAILURES",
    "FALLBACK_READS",
    "POD_CACHE_HITS",
    "REUSED_ANSWERS",
    "SHARED_READS",
    "STAND_INS",
    "TIMEOUTS",
    "Metrics",
    "MetricsSink",
    "RecordingMetrics",
    "executor_tag",
]


class MetricsSink(Protocol):
    """Where the read path counts what happened: :class:`Metrics` in production, :class:`RecordingMetrics` in tests."""

    def incr(self, metric: str, executor: type | str | None) -> None:
        """Count one ``metric`` for ``executor``; must never raise."""


def executor_tag(executor: type | str | None) -> str:
    """The ``executor`` tag of a metric: the class name, the configured name, or ``unknown``."""
    name = executor if isinstance(executor, str) or executor is None else executor.__name__
    return name or "unknown"


class Metrics:
    """The real sink: emits through Airflow's ``Stats``, tagged with the executor."""

    def incr(self, metric: str, executor: type | str | None) -> None:
        """Count one ``metric`` for ``executor``; metrics never break a log read."""
        try:
            from airflow_executor_logs.version_compat import stats

            stats().incr(metric, tags={"executor": executor_tag(executor)})
        except Exception:
            log.debug("Could not emit metric %s", metric, exc_info=True)


class RecordingMetrics:
    """The double: remembers each count as ``(metric, executor tag)``, in order. Thread-safe."""

    def __init__(self) -> None:
        self.counted: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def incr(self, metric: str, executor: type | str | None) -> None:
        with self._lock:
            self.counted.append((metric, executor_tag(executor)))

    def names(self) -> list[str]:
        """The metrics counted, in order."""
        with self._lock:
            return [metric for metric, _ in self.counted]

    def count(self, metric: str) -> int:
        return self.names().count(metric)


if TYPE_CHECKING:  # mypy checks that both sides satisfy the contract
    _real: MetricsSink = Metrics()
    _double: MetricsSink = RecordingMetrics()
