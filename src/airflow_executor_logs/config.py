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
            else:
                value = conf.getfloat(SECTION, field.name, fallback=field.default)
                values[field.name] = value if 0 < value < math.inf else field.default
        return cls(**values)  # type: ignore[arg-type]
