"""
One request for a running task's pod log, shared by identical concurrent reads: the pod, remembered
(one call) or listed (two calls), then its log; the circuit breaker is told how the calls went.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.circuit_breaker import BreakerPermit
from airflow_executor_logs.executors.deadline import Deadline
from airflow_executor_logs.executors.kubernetes.transport import body, describe, is_timeout, is_transport_failure
from airflow_executor_logs.executors.reader_protocol import ReadContext

if TYPE_CHECKING:
    from airflow_executor_logs.executors.kubernetes.reader import KubernetesLogReader

__all__ = ["PodLogFetch"]


class PodLogFetch:
    """One request for a pod log, shared by identical reads: the pod (remembered, or listed), then its log."""

    def __init__(
        self,
        reader: KubernetesLogReader,
        permit: BreakerPermit,
        api: Any,
        executor_cls: type,
        team_name: str | None,
        ti: Any,
        key: tuple[Any, str, str, int],
        context: ReadContext,
    ) -> None:
        self.reader, self.permit, self.api = reader, permit, api
        self.executor_cls, self.team_name, self.ti = executor_cls, team_name, ti
        self.key, self.context = key, context

    def open(self, deadline: Deadline) -> Iterator[list[bytes]]:
        """The log's lines; the breaker is told how the API calls went."""
        try:
            response = self._open(deadline)
        except Exception as err:
            self._settle(err, deadline)
            raise
        finally:
            self.permit.done()
        return body(response, deadline)

    def _open(self, deadline: Deadline) -> Any:
        from kubernetes.client.rest import ApiException

        reader, context, permit = self.reader, self.context, self.permit
        settings = context.settings
        cluster, namespace, selector, tail_lines = self.key
        pod_key = (cluster, namespace, selector)
        name = reader.pods.get(pod_key, settings.pod_cache_ttl)
        if name is not None:
            try:
                response = reader._request_log(self.api, name, namespace, tail_lines, deadline, context)
                context.metrics.incr(metrics.POD_CACHE_HITS, self.executor_cls)
                permit.succeeded()
                return response
            except ApiException as err:
                if err.status not in (401, 404):  # 404: the pod is gone; 401: the token rotated
                    raise
                reader.pods.drop(pod_key, name)
                if err.status == 401:
                    reader.clients.invalidate(self.team_name, self.api)
                    self.api = reader.clients.get(self.team_name, settings.client_ttl)
        self.api, pods = reader._list_pods(self.api, self.team_name, namespace, selector, deadline, context)
        if len(pods) != 1:
            permit.succeeded()
        if not pods:
            raise RuntimeError("Cannot find pod for ti %s", self.ti)
        if len(pods) > 1:
            raise RuntimeError("Found multiple pods for ti %s: %s", self.ti, pods)
        name = pods[0].metadata.name
        response = reader._request_log(self.api, name, namespace, tail_lines, deadline, context)
        permit.succeeded()  # a failure while reading the body does not count: the API answered
        reader.pods.put(pod_key, name, settings.pod_cache_size)
        return response

    def timed_out(self) -> None:
        """The read that started this fetch gave up waiting for the API: count it now, not when the calls end."""
        if self.permit.failed("timed out"):
            self.context.metrics.incr(metrics.BREAKER_OPENINGS, self.executor_cls)

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
            self.context.metrics.incr(metrics.BREAKER_OPENINGS, self.executor_cls)
