"""
The ``[executor_logs]`` options, declared once, and read through Airflow's ``conf``.

Each option is a field of :class:`Settings`: its name, type and default are the field's, its
description and example are the field's metadata (:func:`option`). Airflow's provider-info ``config``
section (``airflow config list``) is generated from them (:func:`provider_config_options`), and so is
the README's option table check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["REFRESH_SECONDS", "SECTION", "Settings", "option", "provider_config_options"]

SECTION = "executor_logs"

#: Seconds a :class:`Settings` snapshot is reused before ``conf`` is read again: one ``conf.get``
#: costs about 100 µs, several times the rest of a class-level read's own work.
REFRESH_SECONDS = 5.0

#: The release that added each option, for the provider info.
_FIRST_VERSION = "0.1.0"
#: Airflow's name for each option type, by the Python type of the default.
_AIRFLOW_TYPES = {bool: "boolean", int: "integer", float: "float"}


def option(default: Any, description: str, example: str, *, section: str = SECTION) -> Any:
    """A :class:`Settings` field: the option's default, its description, and an example value."""
    return field(default=default, metadata={"section": section, "description": description, "example": example})


@dataclass(frozen=True)
class Settings:
    """One snapshot of ``[executor_logs]`` (and ``[core] multi_team``, which decides team lookups)."""

    # A class-level read: its deadline, and the API client it reuses.
    read_timeout: float = option(
        5.0,
        "Deadline, in seconds (monotonic clock), for one class-level read of a running task's executor logs "
        "(all API calls and the whole streamed body).",
        "10.0",
    )
    connect_timeout: float = option(
        1.0, "Connect timeout, in seconds, for each API call a class-level reader makes.", "2.0"
    )
    remote_read_timeout: float = option(
        2.0,
        "Deadline, in seconds (monotonic clock), for the remote log store's read (Elasticsearch, OpenSearch, S3, ...) "
        "of a running task: past it, or when the store fails, a warning line is shown and the task's "
        "executor and worker lines are still served.",
        "5.0",
    )
    client_ttl: float = option(
        300.0,
        "Seconds a class-level reader may reuse an API client before building a new one "
        "(a client is also rebuilt after a 401).",
        "600.0",
    )
    # The short-lived executor, for classes without a class-level reader.
    fallback_enabled: bool = option(
        True,
        "Whether an executor class that overrides get_task_log but has no class-level reader may be "
        "built for one read (and torn down afterwards). When off, such reads return a notice instead.",
        "False",
    )
    fallback_timeout: float = option(
        30.0,
        "Deadline, in seconds, for a read through a short-lived executor (built for one read of an "
        "executor without a class-level reader, then ended): build, read and teardown.",
        "60.0",
    )
    fallback_idle: float = option(
        120.0,
        "Seconds the helper process that forks short-lived executors (one per API server worker, started "
        "by the first such read) waits for the next read before it exits.",
        "600.0",
    )
    # 4: measured with 200 concurrent reads of 50 tasks (ManagerExecutor doubles, 40 request threads, 2 cores):
    # the slowest answer took 0.4 s with 1, 2 or 4 builds at once, 1.0 s with 8 and 1.8 s with 16.
    max_concurrent_fallback_reads: int = option(
        4,
        "Short-lived executors one API server worker process builds at once (each holds a threadpool thread "
        "and forks a process for the whole build); further reads of other tasks are answered at once that the "
        "worker is busy.",
        "2",
    )
    # Pressure: the breaker per cluster, the bulkhead per worker process, and the pod-name cache.
    breaker_threshold: int = option(
        3,
        "Consecutive transport failures (timeouts, refused or reset connections; not error statuses such as "
        "404 or 403) against one Kubernetes cluster after which reads of running tasks' pod logs are answered "
        "at once, with a message, for breaker_cooldown seconds.",
        "5",
    )
    breaker_cooldown: float = option(
        15.0,
        "Seconds an open circuit breaker answers reads at once before it lets one probe read through; the "
        "probe's success closes it, its failure opens it again.",
        "30.0",
    )
    max_concurrent_reads: int = option(
        8,
        "Class-level reads of running tasks' logs that one API server worker process lets wait at once; "
        "each holds a threadpool thread and a database connection.",
        "4",
    )
    slot_wait: float = option(
        0.25,
        "Seconds a read waits for one of the max_concurrent_reads slots before it answers that the worker is busy.",
        "0.5",
    )
    pod_cache_ttl: float = option(
        60.0,
        "Seconds a task's pod name is remembered, so that a steady read makes one Kubernetes call (the log) "
        "instead of two; a pod that is gone is looked up again at once.",
        "30.0",
    )
    pod_cache_size: int = option(
        4096, "Pod names remembered per API server worker process (least recently used first out).", "10000"
    )
    # What one worker process remembers of the answers it served. answer_ttl 1 s: the UI polls every ~3 s, so
    # a viewer still gets lines read within the last poll, and a task costs at most one call per second per
    # worker. stale_lines_ttl 600 s: it bridges a control-plane restart or upgrade (minutes) while the warning
    # always says how old the lines are; memory is bounded by bytes anyway (8 MiB measured with tracemalloc:
    # 591 tasks of 100 Kubernetes log lines kept of 4,096 read, counted 7.99 MiB, traced 7.99 MiB), the TTL
    # only frees the lines of tasks nobody polls.
    answer_ttl: float = option(
        1.0,
        "Seconds an answer is reused for identical reads (same executor, task instance and try) in one API "
        "server worker process, on top of sharing reads in flight: however many people watch a task, a worker "
        "reads its log at most once per answer_ttl.",
        "2.0",
    )
    stale_lines_max_bytes: int = option(
        8 * 1024 * 1024,
        "Bytes of last good log lines one API server worker process keeps (least recently used first out), "
        "to show while the executor's API times out, is skipped or fails in transport. A single read larger "
        "than the whole bound is served but not kept.",
        "16777216",
    )
    stale_lines_ttl: float = option(
        600.0,
        "Seconds the last good lines of a task are kept after they were read; older lines are not shown.",
        "1800.0",
    )
    # Not ours: Airflow's own ``[core] multi_team``.
    multi_team: bool = field(default=False, metadata={"section": "core"})

    @classmethod
    def from_conf(cls) -> Settings:
        """Read every setting from Airflow's ``conf``; a number not above 0 (or infinite) means its default."""
        from airflow.configuration import conf

        values: dict[str, object] = {}
        for declared in fields(cls):
            section = declared.metadata.get("section", SECTION)
            if isinstance(declared.default, bool):
                values[declared.name] = conf.getboolean(section, declared.name, fallback=declared.default)
            elif isinstance(declared.default, int):
                number = conf.getint(section, declared.name, fallback=declared.default)
                values[declared.name] = number if number > 0 else declared.default
            else:
                value = conf.getfloat(section, declared.name, fallback=declared.default)
                values[declared.name] = value if 0 < value < math.inf else declared.default
        return cls(**values)  # type: ignore[arg-type]


def provider_config_options() -> dict[str, dict[str, Any]]:
    """The ``[executor_logs]`` options in the shape of Airflow's provider-info ``config`` section."""
    options: dict[str, dict[str, Any]] = {}
    for declared in fields(Settings):
        if declared.metadata.get("section") != SECTION:
            continue
        description = declared.metadata["description"]
        if not isinstance(declared.default, bool):
            description += " Values <= 0 mean the default."
        options[declared.name] = {
            "description": description + "\n",
            "version_added": _FIRST_VERSION,
            "type": _AIRFLOW_TYPES[type(declared.default)],
            "example": declared.metadata["example"],
            "default": str(declared.default),
        }
    return options
