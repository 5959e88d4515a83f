"""
One request for a running task's pod log, shared by identical concurrent reads: the pod, remembered
(one call) or listed (two calls), then its log. It makes its API calls itself, with the collaborators
it is given (the client cache, the pod cache, a breaker permit), rebuilds the client once after a 401,
and tells the breaker how the calls went.

The pod cache (:class:`PodCache`) remembers which pod serves a task, so that a steady read of a
running task's log is one Kubernetes call instead of two. Per process, bounded (least recently used
first out), with a time to live; an entry is dropped when its pod is gone (404).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.kubernetes.client import KubeClientCache, KubeCoreApi, PodLogResponse
from airflow_executor_logs.executors.kubernetes.transport import body, describe, is_timeout, is_transport_failure
from airflow_executor_logs.executors.reader_protocol import ReadContext
from airflow_executor_logs.executors.resilience.circuit_breaker import BreakerPermit
from airflow_executor_logs.executors.resilience.deadline import Deadline

__all__ = ["CONTAINER", "Cluster", "PodCache", "PodKey", "PodLogFetch", "PodLogKey", "TaskRead"]

T = TypeVar("T")

#: The container of a worker pod that runs the task.
CONTAINER = "base"

#: What identifies the cluster a team's client talks to: the team and its kube config.
Cluster = tuple[str | None, str, str, str]


@dataclass(frozen=True)
class PodKey:
    """Which pod serves a task: the cluster, the namespace and the provider's label selector."""

    cluster: Cluster
    namespace: str
    selector: str


@dataclass(frozen=True)
class PodLogKey:
    """What one pod-log request asks for; equal keys share one request."""

    pod: PodKey
    tail_lines: int


class PodCache:
    """Pod names by key; thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._names: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, ttl: float) -> str | None:
        """The pod remembered for ``key`` within the last ``ttl`` seconds."""
        with self._lock:
            hit = self._names.get(key)
            if hit is None:
                return None
            if self._clock() - hit[1] >= ttl:
                del self._names[key]
                return None
            self._names.move_to_end(key)
            return hit[0]

    def put(self, key: Hashable, name: str, size: int) -> None:
        """Remember ``name`` for ``key``, keeping at most ``size`` entries."""
        with self._lock:
            self._names[key] = (name, self._clock())
            self._names.move_to_end(key)
            while len(self._names) > size:
                self._names.popitem(last=False)

    def drop(self, key: Hashable, name: str) -> None:
        """Forget ``key`` if it still names ``name``."""
        with self._lock:
            hit = self._names.get(key)
            if hit is not None and hit[0] == name:
                del self._names[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)


@dataclass(frozen=True)
class TaskRead:
    """The read that starts a fetch: its executor class and team, and the task instance (for messages)."""

    executor_cls: type
    team_name: str | None
    ti: Any


class PodLogFetch:
    """One request for a pod log, shared by identical reads: the pod (remembered, or listed), then its log."""

    def __init__(
        self,
        key: PodLogKey,
        api: KubeCoreApi,
        permit: BreakerPermit,
        context: ReadContext,
        *,
        clients: KubeClientCache,
        pods: PodCache,
        task: TaskRead,
    ) -> None:
        self.key, self.api, self.permit, self.context = key, api, permit, context
        self._clients, self._pods, self._task = clients, pods, task
        self._rebuilt = False

    def open(self, deadline: Deadline) -> Iterator[list[bytes]]:
        """The log's lines, a batch at a time; the breaker is told how the API calls went."""
        try:
            response = self._open(deadline)
        except Exception as err:
            self._settle(err, deadline)
            raise
        finally:
            self.permit.done()
        return body(response, deadline)

    def timed_out(self) -> None:
        """The read that started this fetch gave up waiting for the API: count it now, not when the calls end."""
        if self.permit.failed("timed out"):
            self.context.metrics.incr(metrics.BREAKER_OPENINGS, self._task.executor_cls)

    def _open(self, deadline: Deadline) -> PodLogResponse:
        from kubernetes.client.rest import ApiException

        settings, pod = self.context.settings, self.key.pod
        name = self._pods.get(pod, settings.pod_cache_ttl)
        if name is not None:
            try:
                response = self._request_log(name, deadline)
                self.context.metrics.incr(metrics.POD_CACHE_HITS, self._task.executor_cls)
                self.permit.succeeded()
                return response
            except ApiException as err:
                if err.status != 404:  # 404: the pod is gone; list again
                    raise
                self._pods.drop(pod, name)
        pods = self._list_pods(deadline)
        if len(pods) != 1:
            self.permit.succeeded()
        if not pods:
            raise RuntimeError("Cannot find pod for ti %s", self._task.ti)
        if len(pods) > 1:
            raise RuntimeError("Found multiple pods for ti %s: %s", self._task.ti, pods)
        name = pods[0].metadata.name
        response = self._request_log(name, deadline)
        self.permit.succeeded()  # a failure while reading the body does not count: the API answered
        self._pods.put(pod, name, settings.pod_cache_size)
        return response

    def _list_pods(self, deadline: Deadline) -> Sequence[Any]:
        """The pods listed, used as the provider uses them (truth, ``len``, first item), not copied."""
        pod = self.key.pod

        def list_pods(api: KubeCoreApi) -> Sequence[Any]:
            result = api.list_namespaced_pod(
                namespace=pod.namespace, label_selector=pod.selector, _request_timeout=self._timeouts(deadline)
            )
            return result.items

        try:
            return self._call(list_pods)
        except ValueError as err:  # the client could not turn the body into a V1PodList
            raise RuntimeError(f"the Kubernetes API answered the pod list with an unreadable body ({err})") from err

    def _request_log(self, name: str, deadline: Deadline) -> PodLogResponse:
        def request(api: KubeCoreApi) -> PodLogResponse:
            return api.read_namespaced_pod_log(
                name=name,
                namespace=self.key.pod.namespace,
                container=CONTAINER,
                follow=False,
                tail_lines=self.key.tail_lines,
                _preload_content=False,
                _request_timeout=self._timeouts(deadline),
            )

        return self._call(request)

    def _call(self, call: Callable[[KubeCoreApi], T]) -> T:
        """``call(client)``; after a 401 (a rotated token), once per fetch, again with a rebuilt client."""
        from kubernetes.client.rest import ApiException

        try:
            return call(self.api)
        except ApiException as err:
            if err.status != 401 or self._rebuilt:
                raise
        self._rebuilt = True
        team_name = self._task.team_name
        self._clients.invalidate(team_name, self.api)
        built = functools.partial(self.context.metrics.incr, metrics.CLIENT_BUILDS, self._task.executor_cls)
        self.api = self._clients.get(team_name, self.context.settings.client_ttl, self.context.deadline, built=built)
        return call(self.api)

    def _timeouts(self, deadline: Deadline) -> tuple[float, float]:
        return deadline.request_timeouts(self.context.settings.connect_timeout)

    def _settle(self, err: Exception, deadline: Deadline) -> None:
        """Only transport failures count against the cluster."""
        from kubernetes.client.rest import ApiException

        if isinstance(err, ApiException):
            self.permit.succeeded()  # the API answered
            return
        timed_out = deadline.expired or is_timeout(err)
        if (timed_out or is_transport_failure(err)) and self.permit.failed(
            "timed out" if timed_out else describe(err, self.api)
        ):
            self.context.metrics.incr(metrics.BREAKER_OPENINGS, self._task.executor_cls)
