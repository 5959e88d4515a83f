"""
A class-level log reader for the Kubernetes provider's ``KubernetesExecutor``.

It returns what the installed provider's ``KubernetesExecutor.get_task_log`` returns, without an
executor instance, and adds what the provider lacks: connect and read timeouts with no retry storm,
a wall-clock deadline over the whole streamed body, a client reused across reads, and error
messages that never carry credentials.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from airflow_executor_logs import config, metrics
from airflow_executor_logs.executors.log_readers import ReaderRegistration, TaskLog
from airflow_executor_logs.executors.resolution import team_name_for

log = logging.getLogger(__name__)

KUBERNETES_EXECUTOR = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor"
CONTAINER = "base"
_CHUNK_SIZE = 64 * 1024


class ReadDeadlineExceeded(TimeoutError):
    """The wall-clock deadline of one log read passed."""


@dataclass
class _Deadline:
    seconds: float
    started: float

    @classmethod
    def start(cls, seconds: float) -> _Deadline:
        return cls(seconds, time.monotonic())

    def remaining(self) -> float:
        left = self.seconds - (time.monotonic() - self.started)
        if left <= 0:
            raise ReadDeadlineExceeded(self.seconds)
        return left

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.started >= self.seconds


# --------------------------------------------------------------------------------------------
# Client reuse
# --------------------------------------------------------------------------------------------


@dataclass
class _CachedClient:
    api: Any
    built_at: float


class KubeClientCache:
    """One CoreV1Api per team, rebuilt after a TTL or on request (after a 401). Thread-safe."""

    def __init__(self) -> None:
        self._clients: dict[str | None, _CachedClient] = {}
        self._lock = threading.Lock()
        self.builds = 0

    def get(self, team_name: str | None) -> Any:
        ttl = config.client_ttl()
        with self._lock:
            cached = self._clients.get(team_name)
            if cached is not None and time.monotonic() - cached.built_at < ttl:
                return cached.api
            api = _build_client(team_name)
            self.builds += 1
            self._clients[team_name] = _CachedClient(api, time.monotonic())
            return api

    def invalidate(self, team_name: str | None, api: Any) -> None:
        """Drop ``api`` if it is still the cached client for ``team_name``."""
        with self._lock:
            cached = self._clients.get(team_name)
            if cached is not None and cached.api is api:
                del self._clients[team_name]

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()


client_cache = KubeClientCache()


def _build_client(team_name: str | None) -> Any:
    """Build a CoreV1Api the way the installed provider does, then cap its retries."""
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


# --------------------------------------------------------------------------------------------
# What the installed provider does
# --------------------------------------------------------------------------------------------


def _streaming_provider(executor_cls: type) -> bool:
    """Providers from 10.20 stream the log, word their messages differently and read the tail from config."""
    return hasattr(executor_cls, "get_streaming_task_log")


def _first_message(executor_cls: type, ti: Any) -> str:
    if _streaming_provider(executor_cls):
        hostname_desc = f" {ti.hostname}" if ti.hostname else ""
        return f"Attempting to fetch logs from pod{hostname_desc} through kube API"
    return f"Attempting to fetch logs from pod {ti.hostname} through kube API"


def _conf_get(section: str, key: str, team_name: str | None, **kwargs: Any) -> Any:
    def read() -> Any:
        from airflow.configuration import conf

        if team_name:
            return conf.get(section, key, team_name=team_name, **kwargs)
        return conf.get(section, key, **kwargs)

    return config.cached((section, key, team_name, *sorted(kwargs.items())), read)


def _tail_lines(executor_cls: type, team_name: str | None) -> int:
    default = int(executor_cls.RUNNING_POD_LOG_LINES)  # type: ignore[attr-defined]
    if not _streaming_provider(executor_cls):
        return default
    value = int(_conf_get("kubernetes_executor", "running_pod_log_lines", team_name, fallback=str(default)))
    if value <= 0:
        raise ValueError(
            f"The [kubernetes_executor] running_pod_log_lines configuration must be greater than 0, got {value}."
        )
    return value


def _namespace(ti: Any, team_name: str | None) -> str:
    pod_override = (ti.executor_config or {}).get("pod_override")
    namespace = None
    if pod_override is not None:
        try:
            namespace = pod_override.metadata.namespace
        except Exception:
            namespace = None
    return namespace or _conf_get("kubernetes_executor", "namespace", team_name)


def _selector(executor_cls: type, ti: Any, try_number: int) -> str:
    # Only providers that label pods with the task-instance id (10.24+) set this flag.
    ti_id = ti.id if getattr(executor_cls, "supports_task_instance_uuid", False) else None
    return _build_selector(ti.dag_id, ti.task_id, try_number, ti.map_index, ti.run_id, ti.queued_by_job_id, ti_id)


@functools.lru_cache(maxsize=4096)
def _build_selector(
    dag_id: str, task_id: str, try_number: int, map_index: int, run_id: str, airflow_worker: Any, ti_id: Any
) -> str:
    """The provider's selector for these fields; cached, since a UI polls one running task's log."""
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    build = PodGenerator.build_selector_for_k8s_executor_pod
    arguments = {
        "dag_id": dag_id,
        "task_id": task_id,
        "try_number": try_number,
        "map_index": map_index,
        "run_id": run_id,
        "airflow_worker": airflow_worker,
    }
    accepted = inspect.signature(build).parameters
    selector: str = build(**{key: value for key, value in arguments.items() if key in accepted})
    if ti_id is not None:
        from airflow.providers.cncf.kubernetes.executors import kubernetes_executor_types

        label = getattr(kubernetes_executor_types, "TASK_INSTANCE_ID_LABEL")  # noqa: B009 (absent before 10.24)
        selector += f",{label}={ti_id}"
    return selector


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_kubernetes_task_log(executor_cls: type, ti: Any, try_number: int) -> TaskLog:
    """Class-level equivalent of ``KubernetesExecutor.get_task_log(ti, try_number)``."""
    from airflow.utils.log.logging_mixin import remove_escape_codes

    deadline = _Deadline.start(config.read_timeout())
    streaming = _streaming_provider(executor_cls)
    messages: list[str] = []
    lines: list[str] = []
    api: Any = None
    found_reported = False
    try:
        team_name = team_name_for(ti)
        api = client_cache.get(team_name)
        messages.append(_first_message(executor_cls, ti))
        selector = _selector(executor_cls, ti, try_number)
        namespace = _namespace(ti, team_name)
        tail_lines = _tail_lines(executor_cls, team_name)
        api, pod_list = _list_pods(api, team_name, namespace, selector, deadline)
        if not pod_list:
            raise RuntimeError("Cannot find pod for ti %s", ti)
        if len(pod_list) > 1:
            raise RuntimeError("Found multiple pods for ti %s: %s", ti, pod_list)
        response = api.read_namespaced_pod_log(
            name=pod_list[0].metadata.name,
            namespace=namespace,
            container=CONTAINER,
            follow=False,
            tail_lines=tail_lines,
            _preload_content=False,
            _request_timeout=_timeouts(deadline),
        )
        complete = False
        try:
            for raw_line in _lines_until(response, deadline):
                if streaming and not found_reported:
                    messages.append("Found logs through kube API")
                    found_reported = True
                lines.append(remove_escape_codes(raw_line.decode()))
            complete = True
        finally:
            if complete:
                response.release_conn()  # back to the pool for the next read
            else:
                response.close()  # an unfinished body leaves the connection unusable
        if lines and not found_reported:
            messages.append("Found logs through kube API")
    except ReadDeadlineExceeded:
        metrics.incr(metrics.TIMEOUTS, executor_cls)
        messages.append(_timed_out(deadline, lines))
        return messages, ["\n".join(lines)]
    except Exception as err:
        if deadline.expired or _is_timeout(err):
            metrics.incr(metrics.TIMEOUTS, executor_cls)
            messages.append(_timed_out(deadline, lines))
            return messages, ["\n".join(lines)]
        metrics.incr(metrics.FAILURES, executor_cls)
        messages.append(f"Reading from k8s pod logs failed: {_describe(err, api)}")
        if streaming:
            return messages, [""]
    return messages, ["\n".join(lines)]


def _timeouts(deadline: _Deadline) -> tuple[float, float]:
    remaining = deadline.remaining()
    return min(config.connect_timeout(), remaining), remaining


def _list_pods(
    api: Any, team_name: str | None, namespace: str, selector: str, deadline: _Deadline
) -> tuple[Any, list[Any]]:
    """List the task's pods; after a 401, rebuild the client once and try again."""
    from kubernetes.client.rest import ApiException

    try:
        result = api.list_namespaced_pod(
            namespace=namespace, label_selector=selector, _request_timeout=_timeouts(deadline)
        )
    except ValueError as err:  # the client could not turn the body into a V1PodList
        raise RuntimeError(f"the Kubernetes API answered the pod list with an unreadable body ({err})") from err
    except ApiException as err:
        if err.status != 401:
            raise
        client_cache.invalidate(team_name, api)
        api = client_cache.get(team_name)
        result = api.list_namespaced_pod(
            namespace=namespace, label_selector=selector, _request_timeout=_timeouts(deadline)
        )
    return api, list(result.items)


def _lines_until(response: Any, deadline: _Deadline) -> Iterator[bytes]:
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


def _timed_out(deadline: _Deadline, lines: list[str]) -> str:
    return (
        f"Reading from k8s pod logs timed out after {deadline.seconds:g} s "
        f"([{config.SECTION}] read_timeout); showing the {len(lines)} lines read before the deadline"
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
    reader=read_kubernetes_task_log,
    # AwsEksExecutor and other subclasses build their clients their own way: they need their own reader.
    include_subclasses=False,
)
