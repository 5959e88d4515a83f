"""Counters emitted through Airflow's ``Stats``, tagged with the executor class name."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CLASS_READS = "executor_logs.class_reads"
FALLBACK_READS = "executor_logs.fallback_reads"
TIMEOUTS = "executor_logs.timeouts"
FAILURES = "executor_logs.failures"


class Metrics:
    """Emits through Airflow's ``Stats``; subclass it (or pass any object with ``incr``) in tests."""

    def incr(self, metric: str, executor: type | str | None) -> None:
        """Count one ``metric`` for ``executor``; metrics never break a log read."""
        name = executor if isinstance(executor, str) or executor is None else executor.__name__
        try:
            from airflow.stats import Stats

            Stats.incr(metric, tags={"executor": name or "unknown"})
        except Exception:
            log.debug("Could not emit metric %s", metric, exc_info=True)
