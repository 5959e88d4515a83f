"""Counters emitted through Airflow's ``Stats``, tagged with the executor class name."""

from __future__ import annotations

import logging

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


class Metrics:
    """Emits through Airflow's ``Stats``; subclass it (or pass any object with ``incr``) in tests."""

    def incr(self, metric: str, executor: type | str | None) -> None:
        """Count one ``metric`` for ``executor``; metrics never break a log read."""
        name = executor if isinstance(executor, str) or executor is None else executor.__name__
        try:
            from airflow_executor_logs.version_compat import stats

            stats().incr(metric, tags={"executor": name or "unknown"})
        except Exception:
            log.debug("Could not emit metric %s", metric, exc_info=True)
