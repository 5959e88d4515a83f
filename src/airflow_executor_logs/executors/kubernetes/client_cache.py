"""Kubernetes API clients for the reader: one per team, reused across reads, rebuilt after a TTL or a 401."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ClientFactory = Callable[[str | None], Any]


@dataclass
class _CachedClient:
    api: Any
    built_at: float


class KubeClientCache:
    """One ``CoreV1Api`` per team. Thread-safe; ``factory`` and ``clock`` are injectable for tests."""

    def __init__(self, factory: ClientFactory | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory or build_client
        self._clock = clock
        self._clients: dict[str | None, _CachedClient] = {}
        self._lock = threading.Lock()
        #: How many clients were built, for tests and diagnostics.
        self.builds = 0

    def get(self, team_name: str | None, ttl: float) -> Any:
        """The team's client, built if there is none or it is older than ``ttl`` seconds."""
        with self._lock:
            cached = self._clients.get(team_name)
            if cached is not None and self._clock() - cached.built_at < ttl:
                return cached.api
            api = self._factory(team_name)
            self.builds += 1
            self._clients[team_name] = _CachedClient(api, self._clock())
            return api

    def invalidate(self, team_name: str | None, api: Any) -> None:
        """Drop ``api`` if it is still the cached client for ``team_name``."""
        with self._lock:
            cached = self._clients.get(team_name)
            if cached is not None and cached.api is api:
                del self._clients[team_name]


def build_client(team_name: str | None) -> Any:
    """Build a ``CoreV1Api`` the way the installed provider does, then cap its retries."""
    import urllib3
    from airflow.providers.cncf.kubernetes import kube_client

    team_aware = getattr(kube_client, "_get_executor_kube_client", None)
    api = team_aware(team_name=team_name) if team_aware is not None else kube_client.get_kube_client()
    # Airflow's default urllib3 Retry() retries 10 times: 11 round trips against a dead API server.
    # One quick reconnect is enough; the deadline bounds everything else.
    pool_manager = api.api_client.rest_client.pool_manager
    pool_manager.connection_pool_kw["retries"] = urllib3.util.Retry(
        total=1, connect=1, read=0, status=0, other=0, redirect=0, backoff_factor=0
    )
    return api
