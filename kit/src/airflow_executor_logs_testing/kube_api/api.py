"""The object tests drive: :class:`FakeKubeAPI`, a real HTTP Kubernetes API (pods, pod logs) on 127.0.0.1."""

from __future__ import annotations

import hmac
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_executor_logs_testing.kube_api.faults import ROUTES, Fault, Route
from airflow_executor_logs_testing.kube_api.journal import RequestJournal
from airflow_executor_logs_testing.kube_api.pods import PodStore
from airflow_executor_logs_testing.kube_api.rbac import AccessRules
from airflow_executor_logs_testing.kube_api.server import LoopbackServer
from airflow_executor_logs_testing.kube_api.service import LoopbackService

__all__ = ["FakeKubeAPI"]


@dataclass
class _Injection:
    route: str
    fault: Fault
    remaining: int | None


class FakeKubeAPI(PodStore, RequestJournal, LoopbackService):
    """A real HTTP Kubernetes API server (pods, pod logs) on 127.0.0.1 for tests.

    Use as a context manager or call :meth:`start` / :meth:`stop`. All state is thread-safe.
    """

    def __init__(self, *, token: str | None = None, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._token = token or secrets.token_urlsafe(24)
        self._token_check: Callable[[str], bool] | None = None
        self._requested_port = port
        PodStore.__init__(self)
        RequestJournal.__init__(self)
        self._faults: list[_Injection] = []
        #: What the token's user may do (:meth:`deny`); everything until told otherwise.
        self.rbac = AccessRules()
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

    # -- connections and stats --------------------------------------------------------------------------

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
            hanging = self._hanging
        with self._journal_lock:
            connections, requests = self._connections, len(self._requests)
        return {"connections_opened": connections, "requests": requests, "pods": self.pod_count(), "hanging": hanging}

    def _authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.token}".encode()
        if header is None:
            return False
        if hmac.compare_digest(header.encode(), expected):
            return True
        with self._lock:
            check = self._token_check
        return check is not None and header.startswith("Bearer ") and bool(check(header.removeprefix("Bearer ")))
