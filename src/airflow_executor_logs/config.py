"""Settings of the ``[executor_logs]`` section, read through Airflow's ``conf``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

SECTION = "executor_logs"

DEFAULT_READ_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_CLIENT_TTL = 300.0
DEFAULT_FALLBACK_TIMEOUT = 30.0
DEFAULT_FALLBACK_ENABLED = True


#: Seconds a setting read through ``conf`` is reused: one ``conf.get`` costs about 100 µs, several
#: times the rest of a class-level read's own work.
CACHE_SECONDS = 5.0
_cache: dict[Any, tuple[float, Any]] = {}


def cached(key: Any, compute: Callable[[], T]) -> T:
    """``compute()``, reused for :data:`CACHE_SECONDS` per ``key``."""
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]  # type: ignore[no-any-return]
    value = compute()
    _cache[key] = (now, value)
    return value


def clear_cache() -> None:
    """Read every setting afresh on next use (for tests)."""
    _cache.clear()


def _getfloat(key: str, default: float) -> float:
    def read() -> float:
        from airflow.configuration import conf

        value = conf.getfloat(SECTION, key, fallback=default)
        return value if value > 0 else default

    return cached((SECTION, key), read)


def read_timeout() -> float:
    """Wall-clock deadline, in seconds, for one class-level log read."""
    return _getfloat("read_timeout", DEFAULT_READ_TIMEOUT)


def connect_timeout() -> float:
    """Connect timeout, in seconds, for each call a reader makes."""
    return _getfloat("connect_timeout", DEFAULT_CONNECT_TIMEOUT)


def client_ttl() -> float:
    """Seconds a reader may reuse an API client before building a new one."""
    return _getfloat("client_ttl", DEFAULT_CLIENT_TTL)


def fallback_timeout() -> float:
    """Deadline, in seconds, for a read through a short-lived executor (build, read and teardown)."""
    return _getfloat("fallback_timeout", DEFAULT_FALLBACK_TIMEOUT)


def fallback_enabled() -> bool:
    """Whether executors without a class-level reader may be built for one read."""

    def read() -> bool:
        from airflow.configuration import conf

        return conf.getboolean(SECTION, "fallback_enabled", fallback=DEFAULT_FALLBACK_ENABLED)

    return cached((SECTION, "fallback_enabled"), read)
