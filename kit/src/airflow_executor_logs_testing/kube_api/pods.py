"""The pods the fake Kubernetes API holds, and what a request for one's log answers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_executor_logs_testing.kube_api.selectors import Selector

__all__ = ["LogRefusal", "PodStore", "log_body"]


@dataclass
class _Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    containers: dict[str, list[str]]
    phase: str
    resource_version: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_json(self, *, with_kind: bool) -> dict[str, Any]:
        pod: dict[str, Any] = {
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(self.labels),
                "uid": self.uid,
                "resourceVersion": self.resource_version,
                "creationTimestamp": self.created,
            },
            "spec": {"containers": [{"name": c, "image": f"fake.invalid/{c}:latest"} for c in self.containers]},
            "status": {"phase": self.phase},
        }
        return {"kind": "Pod", "apiVersion": "v1", **pod} if with_kind else pod


class PodStore:
    """Pods by namespace and name, with the resource version a list answers. Thread-safe."""

    def __init__(self) -> None:
        self._pods_lock = threading.Lock()
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._resource_version = 1

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        logs: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        phase: str = "Running",
    ) -> None:
        """Add (or replace) a pod. ``logs`` maps container -> lines; a plain list is container ``base``."""
        if isinstance(logs, str):
            raise TypeError("logs must be a list of lines or a mapping of container name to lines")
        containers: dict[str, list[str]]
        if logs is None:
            containers = {"base": []}
        elif isinstance(logs, Mapping):
            containers = {str(c): [str(line) for line in lines] for c, lines in logs.items()}
        else:
            containers = {"base": [str(line) for line in logs]}
        if not containers:
            raise ValueError("a pod needs at least one container")
        with self._pods_lock:
            self._resource_version += 1
            self._pods[(namespace, name)] = _Pod(
                name=name,
                namespace=namespace,
                labels={str(k): str(v) for k, v in (labels or {}).items()},
                containers=containers,
                phase=phase,
                resource_version=str(self._resource_version),
            )

    def append_logs(
        self, name: str, lines: Sequence[str], *, namespace: str = "default", container: str = "base"
    ) -> None:
        """Append log lines to one container of an existing pod."""
        with self._pods_lock:
            self._pods[(namespace, name)].containers[container].extend(str(line) for line in lines)

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        """Delete a pod; raises ``KeyError`` when it does not exist."""
        with self._pods_lock:
            del self._pods[(namespace, name)]
            self._resource_version += 1

    def clear_pods(self) -> None:
        """Delete every pod."""
        with self._pods_lock:
            self._pods.clear()
            self._resource_version += 1

    def _pod_list(self, namespace: str | None, selector: Selector) -> dict[str, Any]:
        with self._pods_lock:
            items = [
                pod.to_json(with_kind=False)
                for (ns, _), pod in sorted(self._pods.items())
                if (namespace is None or ns == namespace) and selector.matches(pod.labels)
            ]
            version = str(self._resource_version)
        return {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _pod_json(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._pods_lock:
            pod = self._pods.get((namespace, name))
            return None if pod is None else pod.to_json(with_kind=True)

    def _pod_logs(self, namespace: str, name: str) -> dict[str, list[str]] | None:
        with self._pods_lock:
            pod = self._pods.get((namespace, name))
            return None if pod is None else {c: list(lines) for c, lines in pod.containers.items()}

    def pod_count(self) -> int:
        with self._pods_lock:
            return len(self._pods)


@dataclass(frozen=True)
class LogRefusal:
    """Why a log request is refused with 400, in the real API's words."""

    message: str


def log_body(name: str, containers: Mapping[str, list[str]], query: Mapping[str, str]) -> bytes | LogRefusal:
    """The body of pod ``name``'s log for ``query`` (``container``, ``tailLines``, ``limitBytes``), or why not."""
    container = query.get("container") or None
    if container is None:
        if len(containers) != 1:
            choices = " ".join(containers)
            return LogRefusal(f"a container name must be specified for pod {name}, choose one of: [{choices}]")
        container = next(iter(containers))
    if container not in containers:
        return LogRefusal(f"container {container} is not valid for pod {name}")
    lines = containers[container]
    try:
        tail = int(query["tailLines"]) if query.get("tailLines") else None
        limit = int(query["limitBytes"]) if query.get("limitBytes") else None
    except ValueError:
        return LogRefusal("tailLines and limitBytes must be integers")
    if (tail is not None and tail < 0) or (limit is not None and limit < 1):
        return LogRefusal("tailLines must be >= 0 and limitBytes must be >= 1")
    if tail is not None:
        lines = lines[-tail:] if tail else []
    data = "".join(f"{line}\n" for line in lines).encode()
    return data if limit is None else data[:limit]
