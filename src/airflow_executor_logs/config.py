"""Settings of the ``[executor_logs]`` section, declared once and read through Airflow's ``conf``."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

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
    """One snapshot of ``[executor_logs]`` (and ``[core] multi_team``, which decides team lookups)."""

    #: Wall-clock deadline, in seconds, of one class-level log read.
    read_timeout: float = DEFAULT_READ_TIMEOUT
    #: Connect timeout, in seconds, of each call a reader makes.
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    #: Seconds a reader may reuse an API client before building a new one.
    client_ttl: float = DEFAULT_CLIENT_TTL
    #: Whether executors without a class-level reader may be built for one read.
    fallback_enabled: bool = DEFAULT_FALLBACK_ENABLED
    #: Deadline, in seconds, of a read through a short-lived executor: build, read and teardown.
    fallback_timeout: float = DEFAULT_FALLBACK_TIMEOUT
    #: Consecutive transport failures against one cluster that open its circuit breaker.
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    #: Seconds an open breaker refuses reads before letting one probe through.
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN
    #: Class-level reads a worker process lets wait at once (the bulkhead).
    max_concurrent_reads: int = DEFAULT_MAX_CONCURRENT_READS
    #: Seconds a read waits for a bulkhead slot before answering "busy".
    slot_wait: float = DEFAULT_SLOT_WAIT
    #: Seconds a task's pod name is reused without listing pods.
    pod_cache_ttl: float = DEFAULT_POD_CACHE_TTL
    #: Pod names remembered per process.
    pod_cache_size: int = DEFAULT_POD_CACHE_SIZE
    #: ``[core] multi_team``: whether a task's team is looked up to find its executor.
    multi_team: bool = False

    @classmethod
    def from_conf(cls) -> Settings:
        """Read every setting from Airflow's ``conf``; a number not above 0 (or infinite) means its default."""
        from airflow.configuration import conf

        values: dict[str, object] = {}
        for field in fields(cls):
            if field.name == "multi_team":
                values[field.name] = conf.getboolean("core", "multi_team", fallback=False)
            elif isinstance(field.default, bool):
                values[field.name] = conf.getboolean(SECTION, field.name, fallback=field.default)
            elif isinstance(field.default, int):
                number = conf.getint(SECTION, field.name, fallback=field.default)
                values[field.name] = number if number > 0 else field.default
            else:
                value = conf.getfloat(SECTION, field.name, fallback=field.default)
                values[field.name] = value if 0 < value < math.inf else field.default
        return cls(**values)  # type: ignore[arg-type]
