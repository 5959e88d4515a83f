"""Run :class:`~airflow_executor_logs.testing.kube_api.FakeKubeAPI` in its own process.

:class:`FakeKubeProcess` starts ``python -m airflow_executor_logs.testing.kube_api``, waits for its ready
line and drives it through the loopback-only ``/_fake/`` admin endpoints.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow_executor_logs.testing.kube_api import Fault, RecordedRequest
from airflow_executor_logs.utils.processes import stop_processes

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["FakeKubeProcess"]

_SRC_ROOT = Path(__file__).resolve().parents[2]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeKubeProcess:
    """A fake Kubernetes API served by a child process; stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        *,
        pods: Sequence[Mapping[str, Any]] = (),
        token: str | None = None,
        port: int = 0,
        startup_timeout: float = 20.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self._pods = [dict(p) for p in pods]
        self._token = token
        self._port = port
        self._startup_timeout = startup_timeout
        self._env = dict(os.environ if env is None else env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._ready: dict[str, Any] = {}
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeKubeProcess:
        """Start the child, wait until it serves, then add the initial pods."""
        if self._proc is not None:
            return self
        cmd = [sys.executable, "-m", "airflow_executor_logs.testing.kube_api"]
        cmd += ["--kubeconfig", str(self.kubeconfig), "--port", str(self._port), "--exit-with-parent"]
        if self._token:
            cmd += ["--token", self._token]
        env = dict(self._env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SRC_ROOT), env.get("PYTHONPATH", "")) if p)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child; closed by stop()
        self._proc = proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        lines: queue.Queue[bytes] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=self._startup_timeout)
            self._ready = json.loads(line)
        except (queue.Empty, ValueError):
            timed_out = proc.poll() is None
            self._terminate()
            error = "timed out" if timed_out else self._stderr_text()
            self.stop()
            raise RuntimeError(f"fake kube API process did not become ready: {error.strip()}") from None
        try:
            for pod in self._pods:
                self.add_pod(**pod)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the child by PID, wait ``timeout`` seconds, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is None or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        self._terminate(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()

    def _terminate(self, timeout: float = 5.0) -> None:
        if self._proc is not None:
            stop_processes([self._proc], grace=timeout)  # through Popen: never signals a reaped (recycled) pid

    def __enter__(self) -> FakeKubeProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self._proc is None:
            raise RuntimeError("FakeKubeProcess is not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status, ``None`` while it runs."""
        return None if self._proc is None else self._proc.poll()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the child's server."""
        if not self._ready:
            raise RuntimeError("FakeKubeProcess is not started")
        return str(self._ready["url"])

    @property
    def port(self) -> int:
        """The child's TCP port."""
        if not self._ready:
            raise RuntimeError("FakeKubeProcess is not started")
        return int(self._ready["port"])

    # -- admin API --------------------------------------------------------------------------------------

    def add_pod(
        self,
        name: str,
        *,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        logs: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        phase: str = "Running",
    ) -> None:
        """Add (or replace) a pod, like :meth:`FakeKubeAPI.add_pod`."""
        spec: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
        spec["phase"] = phase
        if logs is not None:
            spec["logs"] = {c: list(v) for c, v in logs.items()} if isinstance(logs, Mapping) else list(logs)
        self._admin("POST", "/_fake/pods", spec)

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        """Delete one pod."""
        self._admin("DELETE", "/_fake/pods?" + urlencode({"name": name, "namespace": namespace}))

    def clear_pods(self) -> None:
        """Delete every pod."""
        self._admin("DELETE", "/_fake/pods")

    def inject(self, route: str, fault: Fault, *, times: int | None = None) -> None:
        """Inject ``fault`` on ``route`` ("list", "get", "log" or "*"), like :meth:`FakeKubeAPI.inject`."""
        self._admin("POST", "/_fake/faults", {"route": route, "times": times, **fault.to_dict()})

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._admin("DELETE", "/_fake/faults")

    def requests(self) -> list[RecordedRequest]:
        """The API requests the child has received."""
        return [RecordedRequest(**r) for r in self._admin("GET", "/_fake/requests")]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._admin("DELETE", "/_fake/requests")

    def stats(self) -> dict[str, int]:
        """``connections_opened``, ``requests`` and ``pods`` counters."""
        return {str(k): int(v) for k, v in self._admin("GET", "/_fake/stats").items()}

    def set_token(self, new: str, *, rewrite_kubeconfig: bool = True) -> None:
        """Rotate the token; by default also rewrite the kubeconfig file with it."""
        self._admin("POST", "/_fake/token", {"token": new, "rewrite_kubeconfig": rewrite_kubeconfig})

    def _admin(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with _NO_PROXY.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"{method} {path} failed with {exc.code}: {detail}") from None

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return str(self._stderr.read().decode(errors="replace"))
