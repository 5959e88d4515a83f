"""
The Kubernetes API client the reader needs: its contract (:class:`KubeCoreApi`), how the real one is
built (as the installed provider builds it, with retries capped), and one per team, reused across
reads and rebuilt after a TTL or a 401 (:class:`KubeClientCache`).

The real implementation is the provider's ``CoreV1Api``; the double beside it is the test kit's
``KubeClientDouble``. Both answer the two calls below, with the keyword arguments the reader passes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from airflow_executor_logs.executors.resilience.deadline import Deadline

__all__ = [
    "ClientBuildTimeout",
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
    """
    What the reader calls on a Kubernetes client: list a task's pods, stream a pod's log. The reader passes every
    argument by keyword, as the provider's executor does.
    """

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


class ClientBuildTimeout(TimeoutError):
    """The client was not built within the read's deadline (a kubeconfig ``exec`` credential plugin that hangs)."""


@dataclass
class _Build:
    """One build of a team's client, on a thread of its own; ``done`` is set when it returned or raised."""

    started: float
    #: The deadline (s) of the read that started it: past it, the build is given up for a new one.
    patience: float
    done: threading.Event = field(default_factory=threading.Event)
    api: KubeCoreApi | None = None
    error: BaseException | None = None
    #: Called once the client is built and cached (counts it: ``executor_logs.client_builds``).
    built: Callable[[], None] | None = None


class KubeClientCache:
    """
    One ``CoreV1Api`` per team. Thread-safe; ``factory`` and ``clock`` are injectable for tests.

    Building a client may run a kubeconfig ``exec`` credential plugin (``aws eks get-token``, say) that
    can hang. So a client is built on a thread of its own, never under the cache's lock: a read waits for
    it only until its deadline, other teams' reads are not held up, and once a build has outlived the
    deadline of the read that started it, the next read starts a new one (at most
    :attr:`MAX_ABANDONED` hung builds per team are left running; past that, reads wait for the newest).
    """

    MAX_ABANDONED = 2

    def __init__(self, factory: ClientFactory | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory or build_client
        self._clock = clock
        self._clients: dict[str | None, _CachedClient] = {}
        self._builds: dict[str | None, _Build] = {}
        self._abandoned: dict[str | None, int] = {}
        self._lock = threading.Lock()

    def get(
        self,
        team_name: str | None,
        ttl: float,
        deadline: Deadline | None = None,
        *,
        built: Callable[[], None] | None = None,
    ) -> KubeCoreApi:
        """
        The team's client, built if there is none or it is older than ``ttl`` seconds (``built()`` is
        called if this read's build is the one cached).

        :raises ClientBuildTimeout: it was not built by ``deadline``.
        """
        with self._lock:
            cached = self._clients.get(team_name)
            if cached is not None and self._clock() - cached.built_at < ttl:
                return cached.api
            build = self._build_for(team_name, deadline, built)
        if not build.done.wait(None if deadline is None else deadline.left()):
            seconds = 0.0 if deadline is None else deadline.seconds
            raise ClientBuildTimeout(
                f"the Kubernetes client was not built within {seconds:g} s "
                "(its kubeconfig credentials, an exec plugin for one, did not answer)"
            )
        if build.error is not None:
            raise build.error
        assert build.api is not None
        return build.api

    def _build_for(self, team_name: str | None, deadline: Deadline | None, built: Callable[[], None] | None) -> _Build:
        """Called with the lock held: the build in flight, or a new one (also in place of one gone stale)."""
        now = self._clock()
        build = self._builds.get(team_name)
        if build is not None:
            stale = now - build.started >= build.patience
            if not stale or self._abandoned.get(team_name, 0) >= self.MAX_ABANDONED:
                return build
            self._abandoned[team_name] = self._abandoned.get(team_name, 0) + 1
        build = self._builds[team_name] = _Build(now, math.inf if deadline is None else deadline.seconds, built=built)
        threading.Thread(
            target=self._build, args=(team_name, build), name="executor-logs-kube-client", daemon=True
        ).start()
        return build

    def _build(self, team_name: str | None, build: _Build) -> None:
        try:
            api = self._factory(team_name)
        except BaseException as err:
            build.error = err
        else:
            build.api = api
        with self._lock:
            current = self._builds.get(team_name) is build
            if current:
                del self._builds[team_name]
                if build.api is not None:
                    self._clients[team_name] = _CachedClient(build.api, self._clock())
            else:  # an abandoned build returned at last: its client is not the newest, drop it
                self._abandoned[team_name] -= 1
        if current and build.api is not None and build.built is not None:
            build.built()
        build.done.set()

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
