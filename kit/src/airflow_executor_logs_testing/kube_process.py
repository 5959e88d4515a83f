"""Run :class:`~airflow_executor_logs_testing.kube_api.FakeKubeAPI` in its own process.

:class:`FakeKubeProcess` starts ``python -m airflow_executor_logs_testing.kube_api`` with this interpreter
(the installed package, no source checkout needed), waits for its ready line and drives it through the
loopback-only admin API, whose methods are ``FakeKubeAPI``'s own (see :mod:`.kube_api.admin`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_executor_logs_testing.kube_api.admin import call_remote, remote
from airflow_executor_logs_testing.kube_api.api import FakeKubeAPI
from airflow_executor_logs_testing.kube_api.service import LoopbackService

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["FakeKubeProcess"]


class FakeKubeProcess(LoopbackService):
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
        cmd = [sys.executable, "-m", "airflow_executor_logs_testing.kube_api"]
        cmd += ["--kubeconfig", str(self.kubeconfig), "--port", str(self._port), "--exit-with-parent"]
        if self._token:
            cmd += ["--token", self._token]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child; closed by stop()
        self._proc = proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=self._env
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
        """SIGTERM the child, SIGKILL it after ``timeout`` s; through its Popen, which never signals a reaped pid."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)

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
    def port(self) -> int:
        """The child's TCP port."""
        if not self._ready:
            raise RuntimeError("FakeKubeProcess is not started")
        return int(self._ready["port"])

    # -- admin API: FakeKubeAPI's own methods, called in the child ----------------------------------------

    # pods and their logs
    add_pod = remote(FakeKubeAPI.add_pod)
    append_logs = remote(FakeKubeAPI.append_logs)
    remove_pod = remote(FakeKubeAPI.remove_pod)
    clear_pods = remote(FakeKubeAPI.clear_pods)
    # faults (kube_api.faults)
    inject = remote(FakeKubeAPI.inject)
    clear_faults = remote(FakeKubeAPI.clear_faults)
    heal = remote(FakeKubeAPI.heal)
    # what was asked (kube_api.journal)
    requests = remote(FakeKubeAPI.recorded_requests)
    clear_requests = remote(FakeKubeAPI.clear_requests)
    stats = remote(FakeKubeAPI.stats)
    # who may ask (kube_api.rbac)
    set_token = remote(FakeKubeAPI.set_token)
    deny = remote(FakeKubeAPI.deny)
    allow_all = remote(FakeKubeAPI.allow_all)

    def admin_call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call ``FakeKubeAPI.<name>(**arguments)`` in the child."""
        return call_remote(self.url, name, arguments)

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return str(self._stderr.read().decode(errors="replace"))
