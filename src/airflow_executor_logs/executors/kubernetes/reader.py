"""
The class-level reader for ``KubernetesExecutor``: the installed provider's answer, without an executor.

It answers what the provider's ``get_streaming_task_log`` (10.20+) or ``get_task_log`` answers, and adds
what the provider lacks: connect and read timeouts with no retry storm, a wall-clock deadline that
holds while core consumes the stream, one client reused across reads, and error messages that never
carry credentials. The pod log is read as core consumes it, so a large log never sits in memory.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.circuit_breaker import BreakerPermit, CircuitBreakers
from airflow_executor_logs.executors.deadline import Deadline
from airflow_executor_logs.executors.kubernetes import provider_compat
from airflow_executor_logs.executors.kubernetes.client_cache import KubeClientCache
from airflow_executor_logs.executors.reader_protocol import (
    LogStream,
    Notice,
    ReadContext,
    ReaderRegistration,
    StreamingTaskLog,
)

if TYPE_CHECKING:
    from airflow_executor_logs.executors.resolution import ResolvedExecutor

KUBERNETES_EXECUTOR = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor"
CONTAINER = "base"
_CHUNK_SIZE = 64 * 1024


class KubernetesLogReader:
    """Reads a RUNNING task's pod log. One per pipeline: it owns its clients, caches and breakers."""

    def __init__(
        self,
        clients: KubeClientCache | None = None,
        settings: provider_compat.ProviderSettings | None = None,
        selector: Callable[[type, Any, int], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = clients or KubeClientCache(clock=clock)
        self.provider_settings = settings or provider_compat.ProviderSettings()
        self.selector = selector or provider_compat.selector_builder()
        #: One circuit per cluster (team and kube config).
        self.breakers = CircuitBreakers(clock)

    def cluster(self, team_name: str | None) -> tuple[str | None, str, str, str]:
        """What identifies the cluster a team's client talks to: the team and its kube config."""
        get = self.provider_settings.get
        return (
            team_name,
            str(get("in_cluster", team_name, fallback="")),
            str(get("config_file", team_name, fallback="")),
            str(get("cluster_context", team_name, fallback="")),
        )

    def __call__(self, executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext) -> StreamingTaskLog:
        executor_cls, team_name = executor.executor_cls, executor.team_name
        deadline = context.deadline
        messages: list[str] = []
        api: Any = None
        permit: BreakerPermit | None = None
        try:
            settings = context.settings
            admitted = self.breakers.admit(
                self.cluster(team_name), threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown
            )
            if isinstance(admitted, str):
                context.metrics.incr(metrics.BREAKER_REFUSALS, executor_cls)
                return [
                    provider_compat.first_message(executor_cls, ti),
                    f"Reading from k8s pod logs skipped: {admitted}",
                ], []
            permit = admitted
            api = self.clients.get(team_name, settings.client_ttl)
            messages.append(provider_compat.first_message(executor_cls, ti))
            selector = self.selector(executor_cls, ti, try_number)
            namespace = self.provider_settings.namespace(ti, team_name)
            tail_lines = self.provider_settings.tail_lines(executor_cls, team_name)
            api, pods = self._list_pods(api, team_name, namespace, selector, context)
            if len(pods) != 1:
                permit.succeeded()
            if not pods:
                raise RuntimeError("Cannot find pod for ti %s", ti)
            if len(pods) > 1:
                raise RuntimeError("Found multiple pods for ti %s: %s", ti, pods)
            response = api.read_namespaced_pod_log(
                name=pods[0].metadata.name,
                namespace=namespace,
                container=CONTAINER,
                follow=False,
                tail_lines=tail_lines,
                _preload_content=False,
                _request_timeout=_timeouts(deadline, context),
            )
            permit.succeeded()  # a failure while reading the body does not count: the API answered
            raw_lines = _lines_until(response, deadline)
            try:
                first = next(raw_lines, None)
            except BaseException:
                response.close()
                raise
            if first is None:
                response.release_conn()
                return messages, []
            messages.append("Found logs through kube API")
            return messages, [self._stream(first, raw_lines, response, executor_cls, api, context)]
        except Exception as err:
            self._settle(permit, err, api, executor_cls, context)
            if deadline.expired or _is_timeout(err):
                context.metrics.incr(metrics.TIMEOUTS, executor_cls)
                messages.append(_timed_out(deadline, 0))
                return messages, []
            context.metrics.incr(metrics.FAILURES, executor_cls)
            messages.append(f"Reading from k8s pod logs failed: {_describe(err, api)}")
            return messages, []
        finally:
            if permit is not None:
                permit.done()

    @staticmethod
    def _settle(
        permit: BreakerPermit | None, err: Exception, api: Any, executor_cls: type, context: ReadContext
    ) -> None:
        """Tell the breaker how a failed read went: only transport failures count against the cluster."""
        from kubernetes.client.rest import ApiException

        if permit is None:
            return
        if isinstance(err, ApiException):
            permit.succeeded()  # the API answered
            return
        timed_out = context.deadline.expired or _is_timeout(err)
        if (timed_out or _is_transport_failure(err)) and permit.failed(
            "timed out" if timed_out else _describe(err, api)
        ):
            context.metrics.incr(metrics.BREAKER_OPENINGS, executor_cls)

    def _stream(
        self, first: bytes, rest: Iterator[bytes], response: Any, executor_cls: type, api: Any, context: ReadContext
    ) -> LogStream:
        """Decoded lines as core consumes them; the connection is pooled again only after a full read."""
        from airflow.utils.log.logging_mixin import remove_escape_codes

        served = 0
        complete = False
        try:
            yield remove_escape_codes(first.decode())
            served += 1
            for raw_line in rest:
                yield remove_escape_codes(raw_line.decode())
                served += 1
            complete = True
        except Exception as err:
            if context.deadline.expired or _is_timeout(err):
                context.metrics.incr(metrics.TIMEOUTS, executor_cls)
                yield Notice(_timed_out(context.deadline, served))
            else:
                context.metrics.incr(metrics.FAILURES, executor_cls)
                yield Notice(f"Reading from k8s pod logs failed: {_describe(err, api)}")
        finally:
            if complete:
                response.release_conn()  # back to the pool for the next read
            else:
                response.close()  # an unfinished body leaves the connection unusable

    def _list_pods(
        self, api: Any, team_name: str | None, namespace: str, selector: str, context: ReadContext
    ) -> tuple[Any, list[Any]]:
        """List the task's pods; after a 401, rebuild the client once and try again."""
        from kubernetes.client.rest import ApiException

        def list_pods(client: Any) -> list[Any]:
            result = client.list_namespaced_pod(
                namespace=namespace, label_selector=selector, _request_timeout=_timeouts(context.deadline, context)
            )
            return list(result.items)

        try:
            return api, list_pods(api)
        except ValueError as err:  # the client could not turn the body into a V1PodList
            raise RuntimeError(f"the Kubernetes API answered the pod list with an unreadable body ({err})") from err
        except ApiException as err:
            if err.status != 401:
                raise
            self.clients.invalidate(team_name, api)
            api = self.clients.get(team_name, context.settings.client_ttl)
            return api, list_pods(api)


def _timeouts(deadline: Deadline, context: ReadContext) -> tuple[float, float]:
    remaining = deadline.remaining()
    return min(context.settings.connect_timeout, remaining), remaining


def _lines_until(response: Any, deadline: Deadline) -> Iterator[bytes]:
    """
    Split the streamed body into lines as urllib3 does (newline kept), stopping at the deadline.

    Per-read socket timeouts cannot cap a stream that drips a line at a time, so before every read
    the socket's timeout is set to what is left of the deadline.
    """
    sock = _socket_of(response)
    chunks = _chunks(response)
    pending = b""
    while True:
        remaining = deadline.remaining()
        if sock is not None:
            sock.settimeout(remaining)
        chunk = next(chunks, None)
        if chunk is None:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _chunks(response: Any) -> Iterator[bytes]:
    """The body as it arrives: chunk by chunk, or in reads that return what is there."""
    if response.chunked and response.supports_chunked_reads():
        yield from response.read_chunked(_CHUNK_SIZE, decode_content=True)
        return
    read = getattr(response, "read1", None) or response.read
    while data := read(_CHUNK_SIZE):
        yield data


def _socket_of(response: Any) -> socket.socket | None:
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _is_timeout(err: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (TimeoutError, socket.timeout)) or "timed out" in str(current).lower():
            return True
        current = getattr(current, "reason", None) or current.__cause__ or current.__context__
        if not isinstance(current, BaseException):
            return False
    return False


def _is_transport_failure(err: BaseException) -> bool:
    """A timeout, or a connection refused, reset or dropped: the API did not answer."""
    from urllib3.exceptions import NewConnectionError, ProtocolError

    transport = (TimeoutError, socket.timeout, ConnectionError, NewConnectionError, ProtocolError)
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, transport) or "timed out" in str(current).lower():
            return True
        current = getattr(current, "reason", None) or current.__cause__ or current.__context__
        if not isinstance(current, BaseException):
            return False
    return False


def _timed_out(deadline: Deadline, served: int) -> str:
    return (
        f"Reading from k8s pod logs timed out after {deadline.seconds:g} s "
        f"([executor_logs] read_timeout); showing the {served} lines read before the deadline"
    )


def _describe(err: BaseException, api: Any) -> str:
    """A one-line description of ``err`` with any credential of ``api`` removed."""
    from kubernetes.client.rest import ApiException

    if isinstance(err, ApiException):
        text = f"({err.status}) {err.reason}"
        detail = _status_message(err.body)
        if detail:
            text += f": {detail}"
    else:
        text = str(err)
    return _redact(text, api)


def _status_message(body: Any) -> str | None:
    if not body:
        return None
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return None
    message = status.get("message") if isinstance(status, dict) else None
    return str(message) if message else None


def _redact(text: str, api: Any) -> str:
    configuration = getattr(getattr(api, "api_client", None), "configuration", None)
    secrets: list[str] = []
    if configuration is not None:
        for value in (getattr(configuration, "api_key", None) or {}).values():
            if value:
                secrets.extend([str(value), str(value).removeprefix("Bearer ").strip()])
        for attribute in ("password", "cert_file", "key_file"):
            value = getattr(configuration, attribute, None)
            if value:
                secrets.append(str(value))
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


REGISTRATION = ReaderRegistration(
    executor=KUBERNETES_EXECUTOR,
    factory=KubernetesLogReader,
    # AwsEksExecutor and other subclasses build their clients their own way: they need their own reader.
    include_subclasses=False,
    # Every call and every chunk of the body is bounded by socket timeouts set from the deadline.
    keeps_deadline=True,
)
