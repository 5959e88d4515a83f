"""
What differs between cncf-kubernetes provider releases, as the reader needs to know it.

Every difference is detected on the installed provider (attributes and signatures), never by
comparing version strings.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "CONF_REFRESH_SECONDS",
    "ProviderSettings",
    "first_message",
    "labels_pods_with_ti_id",
    "selector_builder",
    "streams_natively",
]

#: Seconds a provider setting read through ``conf`` is reused.
CONF_REFRESH_SECONDS = 5.0


def streams_natively(executor_cls: type) -> bool:
    """
    Whether the provider defines ``get_streaming_task_log`` (10.20 and later).

    Such providers word their first message differently and read the tail length from config. Core
    3.4's ``BaseExecutor`` defines the method too, so only an override counts.
    """
    own = getattr(executor_cls, "get_streaming_task_log", None)
    if own is None:
        return False
    from airflow.executors.base_executor import BaseExecutor

    return own is not getattr(BaseExecutor, "get_streaming_task_log", None)


def first_message(executor_cls: type, ti: Any) -> str:
    if streams_natively(executor_cls):
        hostname_desc = f" {ti.hostname}" if ti.hostname else ""
        return f"Attempting to fetch logs from pod{hostname_desc} through kube API"
    return f"Attempting to fetch logs from pod {ti.hostname} through kube API"


def labels_pods_with_ti_id(executor_cls: type) -> bool:
    """Providers from 10.24 add the task-instance id to a worker pod's labels."""
    return bool(getattr(executor_cls, "supports_task_instance_uuid", False))


class ProviderSettings:
    """``[kubernetes_executor]`` (or another section's) settings per team, reused for :data:`CONF_REFRESH_SECONDS`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, team_name: str | None, *, section: str = "kubernetes_executor", **kwargs: Any) -> Any:
        cache_key = (section, key, team_name, *sorted(kwargs.items()))
        now = self._clock()
        with self._lock:
            hit = self._values.get(cache_key)
        if hit is not None and now - hit[0] < CONF_REFRESH_SECONDS:
            return hit[1]
        from airflow.configuration import conf

        team = {"team_name": team_name} if team_name else {}
        value = conf.get(section, key, **team, **kwargs)
        with self._lock:
            self._values[cache_key] = (now, value)
        return value

    def tail_lines(self, executor_cls: type, team_name: str | None) -> int:
        default = int(executor_cls.RUNNING_POD_LOG_LINES)  # type: ignore[attr-defined]
        if not streams_natively(executor_cls):
            return default
        value = int(self.get("running_pod_log_lines", team_name, fallback=str(default)))
        if value <= 0:
            raise ValueError(
                f"The [kubernetes_executor] running_pod_log_lines configuration must be greater than 0, got {value}."
            )
        return value

    def namespace(self, ti: Any, team_name: str | None) -> str:
        pod_override = (ti.executor_config or {}).get("pod_override")
        namespace = None
        if pod_override is not None:
            try:
                namespace = pod_override.metadata.namespace
            except Exception:
                namespace = None
        return namespace or self.get("namespace", team_name)  # type: ignore[no-any-return]


def selector_builder(maxsize: int = 4096) -> Callable[[type, Any, int], str]:
    """A ``selector(executor_cls, ti, try_number)`` that caches the provider's label selectors."""

    @functools.lru_cache(maxsize=maxsize)
    def build(
        dag_id: str, task_id: str, try_number: int, map_index: int, run_id: str, airflow_worker: Any, ti_id: Any
    ) -> str:
        from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

        provider_build = PodGenerator.build_selector_for_k8s_executor_pod
        arguments = {
            "dag_id": dag_id,
            "task_id": task_id,
            "try_number": try_number,
            "map_index": map_index,
            "run_id": run_id,
            "airflow_worker": airflow_worker,
        }
        accepted = inspect.signature(provider_build).parameters
        selector: str = provider_build(**{key: value for key, value in arguments.items() if key in accepted})
        if ti_id is not None:
            from airflow.providers.cncf.kubernetes.executors import kubernetes_executor_types

            label = getattr(kubernetes_executor_types, "TASK_INSTANCE_ID_LABEL")  # noqa: B009 (absent before 10.24)
            selector += f",{label}={ti_id}"
        return selector

    def selector(executor_cls: type, ti: Any, try_number: int) -> str:
        ti_id = ti.id if labels_pods_with_ti_id(executor_cls) else None
        return build(ti.dag_id, ti.task_id, try_number, ti.map_index, ti.run_id, ti.queued_by_job_id, ti_id)

    return selector
