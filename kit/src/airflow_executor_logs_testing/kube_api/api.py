"""The object tests drive: :class:`FakeKubeAPI`, a real HTTP Kubernetes API (pods, pod logs) on 127.0.0.1."""

from __future__ import annotations

import hmac
import json
import os
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_executor_logs_testing.kube_api.faults import ROUTES, Fault, RecordedRequest, Route
from airflow_executor_logs_testing.kube_api.rbac import AccessRules
from airflow_executor_logs_testing.kube_api.selectors import Selector
from airflow_executor_logs_testing.kube_api.server import LoopbackServer, LoopbackService

__all__ = ["FakeKubeAPI"]


@dataclass
class _Injection:
    route: str
    fault: Fault
    remaining: int | None


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


class FakeKubeAPI(LoopbackService):
    """A real HTTP Kubernetes API server (pods, pod logs) on 127.0.0.1 for tests.

    Use as a context manager or call :meth:`start` / :meth:`stop`. All state is thread-safe.
    """

    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._token = token or secrets.token_urlsafe(24)
        self._token_check: Callable[[str], bool] | None = None
        self._requested_port = port
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._faults: list[_Injection] = []
        #: What the token's user may do (:meth:`deny`); everything until told otherwise.
        self.rbac = AccessRules()
        self._requests: list[RecordedRequest] = []
        self._connections = 0
        self._resource_version = 1
        self._kubeconfig: tuple[Path, dict[str, Any]] | None = None
        self._stopping = threading.Event()
        self._release = threading.Event()  # set (and replaced) by heal(): the requests a hang holds answer
        self._hanging = 0
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeKubeAPI:
        """Bind an ephemeral port on 127.0.0.1 and serve from a daemon thread."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("a stopped FakeKubeAPI cannot be restarted")
            if self._server is not None:
                return self
            server = LoopbackServer(self, self._requested_port)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube-api", daemon=True
            )
            self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop every open connection (hung ones too) and join all threads. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            server, thread = self._server, self._thread
        self._stopping.set()
        with self._lock:
            self._release.set()  # the held requests wake up, see the stop and drop their connections
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()  # joins handler threads
        thread.join()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("FakeKubeAPI is not started")
        return int(self._server.server_address[1])

    @property
    def token(self) -> str:
        """The bearer token requests must carry."""
        with self._lock:
            return self._token

    def set_token(self, new: str, *, rewrite_kubeconfig: bool = False) -> None:
        """Rotate the accepted bearer token; requests with the old one get 401.

        With ``rewrite_kubeconfig``, the kubeconfig last written by :meth:`write_kubeconfig` follows.
        """
        if not new:
            raise ValueError("token must not be empty")
        with self._lock:
            self._token = new
        if rewrite_kubeconfig:
            self._rewrite_kubeconfig()

    def accept_tokens(self, check: Callable[[str], bool] | None) -> None:
        """Also accept the bearer tokens ``check`` accepts (tokens minted per client, such as EKS's); ``None`` stops."""
        with self._lock:
            self._token_check = check

    def write_kubeconfig(
        self,
        path: str | os.PathLike[str],
        extra_user_fields: Mapping[str, Any] | None = None,
        *,
        namespace: str = "default",
    ) -> Path:
        """Write a kubeconfig (server = :attr:`url`, bearer token, current context) and return its path."""
        target = Path(path)
        user = {"token": self.token, **(extra_user_fields or {})}
        quote = json.dumps  # a JSON scalar is a valid YAML flow scalar
        lines = [
            "apiVersion: v1",
            "kind: Config",
            "preferences: {}",
            "clusters:",
            "- name: fake-kube-api",
            "  cluster:",
            f"    server: {quote(self.url)}",
            "users:",
            "- name: fake-kube-user",
            "  user:",
            *(f"    {quote(str(k))}: {quote(v)}" for k, v in user.items()),
            "contexts:",
            "- name: fake-kube-api",
            "  context:",
            "    cluster: fake-kube-api",
            "    user: fake-kube-user",
            f"    namespace: {quote(namespace)}",
            "current-context: fake-kube-api",
        ]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            os.replace(tmp, target)  # atomic: a concurrent reader never sees half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self._kubeconfig = (
                target,
                {"extra_user_fields": dict(extra_user_fields or {}), "namespace": namespace},
            )
        return target

    def _rewrite_kubeconfig(self) -> None:
        with self._lock:
            previous = self._kubeconfig
        if previous is None:
            raise ValueError("no kubeconfig was written by this server")
        self.write_kubeconfig(previous[0], **previous[1])

    # -- pods -------------------------------------------------------------------------------------------

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
        with self._lock:
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
        with self._lock:
            self._pods[(namespace, name)].containers[container].extend(str(line) for line in lines)

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        """Delete a pod; raises ``KeyError`` when it does not exist."""
        with self._lock:
            del self._pods[(namespace, name)]
            self._resource_version += 1

    def clear_pods(self) -> None:
        """Delete every pod."""
        with self._lock:
            self._pods.clear()
            self._resource_version += 1

    def _pod_list(self, namespace: str | None, selector: Selector) -> dict[str, Any]:
        with self._lock:
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
        with self._lock:
            pod = self._pods.get((namespace, name))
            return None if pod is None else pod.to_json(with_kind=True)

    def _pod_logs(self, namespace: str, name: str) -> dict[str, list[str]] | None:
        with self._lock:
            pod = self._pods.get((namespace, name))
            return None if pod is None else {c: list(lines) for c, lines in pod.containers.items()}

    # -- faults -----------------------------------------------------------------------------------------

    def inject(self, route: Route | str, fault: Fault, *, times: int | None = None) -> None:
        """Apply ``fault`` to requests on ``route`` (see :data:`~.faults.ROUTES`), at most ``times`` times.

        Faults hit authenticated requests only; the oldest matching injection wins.
        """
        if route not in ROUTES:
            raise ValueError(f"route must be one of {sorted(ROUTES)}, not {route!r}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for every request)")
        with self._lock:
            self._faults.append(_Injection(route, fault, times))

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """RBAC: answer ``verb`` on ``resource`` (``"list", "pods"``; ``"get", "pods/log"``) in ``namespace``
        (``None``: everywhere) with the real API's 403, and say so to a ``SelfSubjectAccessReview``."""
        self.rbac.deny(verb, resource, namespace)

    def allow_all(self) -> None:
        """RBAC: remove every :meth:`deny`."""
        self.rbac.allow_all()

    def clear_faults(self) -> None:
        """Remove every injected fault (requests a hang already holds stay held: see :meth:`heal`)."""
        with self._lock:
            self._faults.clear()

    def heal(self) -> int:
        """Remove every injected fault and answer the requests a hang holds, as an API that came back would.

        Returns how many held requests were let go (their clients may have given up already).
        """
        with self._lock:
            self._faults.clear()
            released, self._release = self._release, threading.Event()
            count = self._hanging
        released.set()
        return count

    def _hold(self) -> bool:
        """Hold a request until :meth:`heal` (return ``True``: answer it) or :meth:`stop` (``False``: drop it)."""
        with self._lock:
            release = self._release
            self._hanging += 1
        try:
            release.wait()
        finally:
            with self._lock:
                self._hanging -= 1
        return not self._stopping.is_set()

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            for injection in self._faults:
                if injection.route in ("*", route):
                    if injection.remaining is not None:
                        injection.remaining -= 1
                        if injection.remaining == 0:
                            self._faults.remove(injection)
                    return injection.fault
        return None

    # -- requests and stats -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copies of the API requests received so far, oldest first (admin requests excluded)."""
        return self.recorded_requests()

    def recorded_requests(self) -> list[RecordedRequest]:
        """Copies of the API requests received so far, oldest first (admin requests excluded)."""
        with self._lock:
            return [replace(r, query=dict(r.query)) for r in self._requests]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    @property
    def connections_opened(self) -> int:
        """TCP connections that carried at least one API (non-admin) request."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        """TCP connections open right now (kept alive by a client's pool, or mid-request)."""
        server = self._server
        if server is None:
            return 0
        return server.open_count()

    def stats(self) -> dict[str, int]:
        """``connections_opened``, ``requests``, ``pods`` and ``hanging`` (requests a hang holds right now)."""
        with self._lock:
            return {
                "connections_opened": self._connections,
                "requests": len(self._requests),
                "pods": len(self._pods),
                "hanging": self._hanging,
            }

    def _record(self, method: str, path: str, query: dict[str, str], route: str) -> RecordedRequest:
        record = RecordedRequest(method=method, path=path, query=query, route=route, timestamp=time.time())
        with self._lock:
            self._requests.append(record)
        return record

    def _set_status(self, record: RecordedRequest, code: int) -> None:
        with self._lock:
            record.status = code

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def _authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.token}".encode()
        if header is None:
            return False
        if hmac.compare_digest(header.encode(), expected):
            return True
        with self._lock:
            check = self._token_check
        return check is not None and header.startswith("Bearer ") and bool(check(header.removeprefix("Bearer ")))
