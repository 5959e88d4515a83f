"""
The class-level reader for ``KubernetesExecutor``: the installed provider's answer, without an executor.

It answers what the provider's ``get_streaming_task_log`` (10.20+) or ``get_task_log`` answers, and adds
what the provider lacks: connect and read timeouts with no retry storm, a deadline (monotonic) that
holds while core consumes the stream, one client reused across reads, and error messages that never
carry credentials. The pod log is read as core consumes it, so a large log never sits in memory.

Under pressure: a steady read is one call (the pod is remembered), identical concurrent reads share
one request, and a cluster that keeps failing at the transport level is not called for a while (a
circuit breaker per cluster).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.kubernetes import provider_compat
from airflow_executor_logs.executors.kubernetes.client import ClientBuildTimeout, KubeClientCache, KubeCoreApi
from airflow_executor_logs.executors.kubernetes.pod_log_fetch import (
    CONTAINER,
    Cluster,
    PodCache,
    PodKey,
    PodLogFetch,
    PodLogKey,
    TaskRead,
)
from airflow_executor_logs.executors.kubernetes.transport import describe, is_timeout, is_transport_failure
from airflow_executor_logs.executors.reader_protocol import (
    LogStream,
    Notice,
    Outcome,
    ReadContext,
    ReaderRegistration,
    StreamingTaskLog,
)
from airflow_executor_logs.executors.resilience.circuit_breaker import CircuitBreakers, Refusal
from airflow_executor_logs.executors.resilience.coalescing import Coalescer, Waiter
from airflow_executor_logs.executors.resilience.deadline import timed_out, timed_out_briefly

if TYPE_CHECKING:
    from airflow_executor_logs.executors.resolution import ResolvedExecutor

__all__ = ["KUBERNETES_EXECUTOR", "REGISTRATION", "KubernetesLogReader"]

KUBERNETES_EXECUTOR = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor"
#: How the reader names itself in its messages, as the provider does.
SOURCE = "Reading from k8s pod logs"


class KubernetesLogReader:
    """
    Reads a RUNNING task's pod log. One per pipeline: it owns its clients, caches and breakers, and
    composes a read from them; the request itself is a :class:`PodLogFetch`.
    """

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
        #: The pod serving each task, so that a steady read is one call.
        self.pods = PodCache(clock)
        #: Reads in flight, shared by identical concurrent reads.
        self.coalescer: Coalescer[PodLogKey, bytes] = Coalescer()

    def cluster(self, team_name: str | None) -> Cluster:
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
        messages: list[str] = []
        api: KubeCoreApi | None = None
        fetch: PodLogFetch | None = None  # the fetch this read started, if it started one
        cluster: Cluster | None = None

        def problem(
            outcome: Outcome,
            message: str,
            summary: str,
            *,
            transient: bool | None = None,
            retry_in: float | None = None,
            counter: str | None = None,
        ) -> StreamingTaskLog:
            report = context.report
            message = report.problem(
                outcome, message, summary=summary, transient=transient, retry_in=retry_in, counter=counter
            )
            return [*messages, message], []

        try:
            cluster = self.cluster(team_name)
            built = functools.partial(context.metrics.incr, metrics.CLIENT_BUILDS, executor_cls)
            api = self.clients.get(team_name, context.settings.client_ttl, context.deadline, built=built)
            messages.append(provider_compat.first_message(executor_cls, ti))
            pod = PodKey(
                cluster, self.provider_settings.namespace(ti, team_name), self.selector(executor_cls, ti, try_number)
            )
            key = PodLogKey(pod, self.provider_settings.tail_lines(executor_cls, team_name))
            joined = self._join_or_start(key, api, context, TaskRead(executor_cls, team_name, ti))
            if isinstance(joined, Refusal):
                summary = f"Kubernetes API failed {joined.failures} times in a row"
                message = f"{SOURCE} skipped: {joined}"
                return problem(
                    Outcome.REFUSED, message, summary, retry_in=joined.retry_in, counter=metrics.BREAKER_REFUSALS
                )
            waiter, fetch = joined
            waiter.opened()
            raw_lines = waiter.lines()
            try:
                first = next(raw_lines, None)
            except BaseException:
                raw_lines.close()
                raise
            if first is None:
                return messages, []
            messages.append("Found logs through kube API")
            return messages, [self._stream(first, raw_lines, executor_cls, api, context)]
        except ClientBuildTimeout as err:
            seconds = context.deadline.seconds
            message = f"{timed_out(SOURCE, seconds)}: {err}"
            return problem(Outcome.TIMEOUT, message, timed_out_briefly("Kubernetes credentials", seconds))
        except Exception as err:
            if context.deadline.expired or is_timeout(err):
                if fetch is not None:
                    fetch.timed_out()
                seconds = context.deadline.seconds
                summary = timed_out_briefly("Kubernetes API", seconds)
                retry_in = self.breakers.retry_in(cluster) if cluster is not None else None
                return problem(Outcome.TIMEOUT, timed_out(SOURCE, seconds), summary, retry_in=retry_in)
            described = describe(err, api)
            message = f"{SOURCE} failed: {described}"
            if is_transport_failure(err):  # the API may answer again: earlier lines are worth showing
                summary = "Kubernetes API unreachable (details in the source message)"
                return problem(Outcome.FAILED, message, summary, transient=True)
            return problem(Outcome.FAILED, message, message)

    def _join_or_start(
        self, key: PodLogKey, api: KubeCoreApi, context: ReadContext, task: TaskRead
    ) -> tuple[Waiter[bytes], PodLogFetch | None] | Refusal:
        """
        A waiter on the fetch of ``key``: one in flight joined, or one started if the cluster's breaker
        lets it (with the fetch this read started), or why the breaker refused it.
        """
        settings, deadline = context.settings, context.deadline
        waiter = self.coalescer.join(key, deadline)
        if waiter is None:
            admitted = self.breakers.admit(
                key.pod.cluster,
                threshold=settings.breaker_threshold,
                cooldown=settings.breaker_cooldown,
                probe=_probe(api, key, self.pods.get(key.pod, settings.pod_cache_ttl), settings.connect_timeout),
                probe_wait=min(settings.connect_timeout, deadline.left()),
            )
            if isinstance(admitted, Refusal):
                return admitted
            fetch = PodLogFetch(key, api, admitted, context, clients=self.clients, pods=self.pods, task=task)
            waiter, joined = self.coalescer.start(key, fetch.open, deadline)
            if not joined:
                return waiter, fetch
            admitted.done()
        context.metrics.incr(metrics.COALESCED_READS, task.executor_cls)
        return waiter, None

    def _stream(
        self, first: bytes, rest: Iterator[bytes], executor_cls: type, api: KubeCoreApi | None, context: ReadContext
    ) -> LogStream:
        """
        Decoded lines without ANSI escape codes (core's ``remove_escape_codes``), as core consumes them;
        closing it early leaves the fetch (its connection is dropped).
        """
        remove, marker = _escape_codes_remover()
        served = 0
        try:
            line = first.decode()
            yield remove(line) if marker in line else line
            served += 1
            for raw_line in rest:
                line = raw_line.decode()
                yield remove(line) if marker in line else line
                served += 1
        except Exception as err:
            if context.deadline.expired or is_timeout(err):
                message = timed_out(SOURCE, context.deadline.seconds, served)
                context.report.problem(Outcome.TIMEOUT, message)
            else:
                message = context.report.problem(Outcome.FAILED, f"{SOURCE} failed: {describe(err, api)}")
            yield Notice(message)
        finally:
            close = getattr(rest, "close", None)
            if close is not None:
                close()


#: Core's pattern of ANSI escape codes (``logging_mixin.ANSI_ESCAPE``, 3.0 to 3.4): every match starts with ESC.
_CORE_ESCAPE_PATTERN = r"\x1B[@-_][0-?]*[ -/]*[@-~]"


def _escape_codes_remover() -> tuple[Callable[[str], str], str]:
    """
    Core's ``remove_escape_codes``, and what a line must contain for it to change anything: ESC with
    core's known pattern, else ``""`` (in every line). Most lines have no escape code, and the regex
    cost about 0.8 µs a line on them for nothing (measured on the 2-core machine).
    """
    from airflow.utils.log import logging_mixin

    pattern = getattr(getattr(logging_mixin, "ANSI_ESCAPE", None), "pattern", None)
    return logging_mixin.remove_escape_codes, "\x1b" if pattern == _CORE_ESCAPE_PATTERN else ""


REGISTRATION = ReaderRegistration(
    executor=KUBERNETES_EXECUTOR,
    factory=KubernetesLogReader,
    # Subclasses may build their clients their own way: each needs its own registration (AwsEksExecutor's: aws_eks.py).
    include_subclasses=False,
    # Every call and every chunk of the body is bounded by socket timeouts set from the deadline.
    keeps_deadline=True,
)


def _probe(api: KubeCoreApi, key: PodLogKey, pod_name: str | None, timeout: float) -> Callable[[], None]:
    """
    A cheap call that tells whether the cluster's API answers again, with connect and read timeouts of
    ``timeout``: the last line of the task's pod log when the pod is known (the call that failed, not
    another that may work while it hangs), else the task's pod list. Any answer counts (an error
    status too); it raises only if the call fails.
    """

    def probe() -> None:
        from kubernetes.client.rest import ApiException

        pod = key.pod
        try:
            if pod_name is None:
                api.list_namespaced_pod(
                    namespace=pod.namespace, label_selector=pod.selector, _request_timeout=(timeout, timeout)
                )
                return
            response = api.read_namespaced_pod_log(
                name=pod_name,
                namespace=pod.namespace,
                container=CONTAINER,
                follow=False,
                tail_lines=1,
                _preload_content=False,
                _request_timeout=(timeout, timeout),
            )
            try:
                response.read()
            finally:
                response.release_conn()
        except ApiException:
            return

    return probe
