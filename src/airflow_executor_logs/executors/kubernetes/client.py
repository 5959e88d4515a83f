"""
The Kubernetes API client the reader needs: its contract (:class:`KubeCoreApi`), how the real one is
built (as the installed provider builds it, with retries capped), and one per team, reused across
reads and rebuilt after a TTL or a 401 (:class:`KubeClientCache`).

The real implementation is the provider's ``CoreV1Api``; the double beside it is the test kit's
``KubeClientDouble``. Both answer the two calls below, with the keyword arguments the reader passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ClientFactory",
    "KubeClientCache",
    "KubeCoreApi",
    "PodList",
    "PodLogResponse",
    "build_client",
    "cap_retries",
]


class _PodMetadata(Protocol):
    @property
    def name(self) -> str: ...


class _Pod(Protocol):
    @property
    def metadata(self) -> _PodMetadata: ...


class PodList(Protocol):
    """The answer to a pod list: its pods."""

    @property
    def items(self) -> Sequence[_Pod]: ...


class PodLogResponse(Protocol):
    """A pod log requested unloaded: urllib3's streamed ``HTTPResponse`` or the double's."""

    @property
    def chunked(self) -> bool: ...

    def supports_chunked_reads(self) -> bool: ...

    def read_chunked(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]: ...

    def read(self, amt: int | None = None, /) -> bytes: ...

    def release_conn(self) -> None:
        """Give the connection back to its pool (after a whole body)."""

    def close(self) -> None:
        """Drop the connection (after a body left unfinished)."""


@runtime_checkable
class KubeCoreApi(Protocol):
    """What the reader calls on a Kubernetes client: list a task's pods, stream a pod's log."""

    def list_namespaced_pod(
        self, namespace: str, *, label_selector: str, _request_timeout: tuple[float, float]
    ) -> PodList: ...

    def read_namespaced_pod_log(
        self,
        name: str,
        namespace: str,
        *,
        container: str,
        follow: bool,
        tail_lines: int,
        _preload_content: bool,
        _request_timeout: tuple[float, float],
    ) -> PodLogResponse: ...


ClientFactory = Callable[[str | None], KubeCoreApi]


@dataclass
class _CachedClient:
    api: KubeCoreApi
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

    def get(self, team_name: str | None, ttl: float) -> KubeCoreApi:
        """The team's client, built if there is none or it is older than ``ttl`` seconds."""
        with self._lock:
            cached = self._clients.get(team_name)
            if cached is not None and self._clock() - cached.built_at < ttl:
                return cached.api
            api = self._factory(team_name)
            self.builds += 1
            self._clients[team_name] = _CachedClient(api, self._clock())
            return api  # type: ignore[no-any-return]  # the kubernetes client is untyped

    def invalidate(self, team_name: str | None, api: KubeCoreApi) -> None:
        """Drop ``api`` if it is still the cached client for ``team_name``."""
        with self._lock:
            cached = self._clients.get(team_name)
            if cached is not None and cached.api is api:
                del self._clients[team_name]


def build_client(team_name: str | None) -> KubeCoreApi:
    """Build a ``CoreV1Api`` the way the installed provider does, then cap its retries."""
    from airflow.providers.cncf.kubernetes import kube_client

    team_aware = getattr(kube_client, "_get_executor_kube_client", None)
    api = team_aware(team_name=team_name) if team_aware is not None else kube_client.get_kube_client()
    return cap_retries(api)


def cap_retries(api: Any) -> KubeCoreApi:
    """Cap the retries of a built ``CoreV1Api`` (in place) and return it."""
    import urllib3

    # Airflow's default urllib3 Retry() retries 10 times: 11 round trips against a dead API server.
    # One quick reconnect is enough; the deadline bounds everything else.
    pool_manager = api.api_client.rest_client.pool_manager
    pool_manager.connection_pool_kw["retries"] = urllib3.util.Retry(
        total=1, connect=1, read=0, status=0, other=0, redirect=0, backoff_factor=0
    )
    return api  # type: ignore[no-any-return]  # the kubernetes client is untyped
