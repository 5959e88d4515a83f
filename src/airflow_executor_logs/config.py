"""Settings of the ``[executor_logs]`` section, declared once and read through Airflow's ``conf``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

SECTION = "executor_logs"

DEFAULT_READ_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_CLIENT_TTL = 300.0
DEFAULT_FALLBACK_TIMEOUT = 30.0
DEFAULT_FALLBACK_ENABLED = True
#: Consecutive transport failures (timeouts, refused or reset connections) that open a cluster's breaker.
DEFAULT_BREAKER_THRESHOLD = 3
#: Seconds an open breaker answers at once before it lets one probe read through.
DEFAULT_BREAKER_COOLDOWN = 15.0
#: Class-level reads one worker process lets wait on executors' APIs at once.
DEFAULT_MAX_CONCURRENT_READS = 8
#: Seconds a read waits for a free slot before it answers "busy".
DEFAULT_SLOT_WAIT = 0.25
#: Seconds a task's pod name is remembered, so a steady read makes one Kubernetes call.
DEFAULT_POD_CACHE_TTL = 60.0
#: Pod names remembered per process (least recently used first out).
DEFAULT_POD_CACHE_SIZE = 4096

#: Seconds a :class:`Settings` snapshot is reused before ``conf`` is read again: one ``conf.get``
#: costs about 100 µs, several times the rest of a class-level read's own work.
REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class Settings:
    """
    One snapshot of ``[executor_logs]`` (and ``[core] multi_team``, which decides team lookups).

    Each field is the option of that name (``multi_team`` in ``[core]``); what it means is declared once, in the
    provider's config section (:mod:`airflow_executor_logs.provider`, shown by ``airflow config list``).
    """

    # A class-level read: its deadline, and the API client it reuses.
    read_timeout: float = DEFAULT_READ_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    client_ttl: float = DEFAULT_CLIENT_TTL
    # The short-lived executor, for classes without a class-level reader.
    fallback_enabled: bool = DEFAULT_FALLBACK_ENABLED
    fallback_timeout: float = DEFAULT_FALLBACK_TIMEOUT
    # Pressure: the breaker per cluster, the bulkhead per worker process, and the pod-name cache.
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN
    max_concurrent_reads: int = DEFAULT_MAX_CONCURRENT_READS
    slot_wait: float = DEFAULT_SLOT_WAIT
    pod_cache_ttl: float = DEFAULT_POD_CACHE_TTL
    pod_cache_size: int = DEFAULT_POD_CACHE_SIZE
    # Not ours: Airflow's own ``[core] multi_team``.
    multi_team: bool = field(default=False, metadata={"section": "core"})

    @classmethod
    def from_conf(cls) -> Settings:
        """Read every setting from Airflow's ``conf``; a number not above 0 (or infinite) means its default."""
        from airflow.configuration import conf

        values: dict[str, object] = {}
        for option in fields(cls):
            section = option.metadata.get("section", SECTION)
            if isinstance(option.default, bool):
                values[option.name] = conf.getboolean(section, option.name, fallback=option.default)
            elif isinstance(option.default, int):
                number = conf.getint(section, option.name, fallback=option.default)
                values[option.name] = number if number > 0 else option.default
            else:
                value = conf.getfloat(section, option.name, fallback=option.default)
                values[option.name] = value if 0 < value < math.inf else option.default
        return cls(**values)  # type: ignore[arg-type]
