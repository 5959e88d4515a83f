"""
``ApiServer``: a real ``airflow api-server`` for a sandbox, on 127.0.0.1, and the processes it started.

Every server gets its own ``TMPDIR`` (``<sandbox tmpdir>/api-<port>``), so the Manager processes its
workers fork are attributed to it even once orphaned; ``stop()`` stops all of them by PID.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import httpx
import psutil

from airflow_executor_logs.utils.processes import ManagerProcess, find_manager_processes, stop_processes
from airflow_executor_logs_testing.lifecycle import Lifecycle
from tests.support.process_control import find_processes_with_env, process_tree, same_process, stop_process_tree
from tests.support.sandbox.client import LogClient
from tests.support.sandbox.home import HOST, SandboxError, SandboxLayout, free_port

if TYPE_CHECKING:
    from collections.abc import Mapping


#: Runs the ``airflow`` script (``argv[1]``) as ``__main__`` without a ``__file__``. uvicorn (Airflow 3.0 and
#: 3.1) spawns its workers, and a spawned child re-imports a main script that has one: all of Airflow's CLI,
#: seconds of CPU, before the worker can answer its supervisor's ping (5 s, then it is killed and replaced).
_RUN_SCRIPT = (
    "import sys; from pathlib import Path; sys.argv.pop(0); "
    "exec(compile(Path(sys.argv[0]).read_text(), sys.argv[0], 'exec'))"
)


class ApiServer(Lifecycle, LogClient):
    """
    A real ``airflow api-server`` running against an ``AirflowSandbox`` on 127.0.0.1.

    Every server gets its own ``TMPDIR`` (``<sandbox tmpdir>/api-<port>``), so the Manager processes
    its workers fork can be attributed to it even after they were orphaned.
    """

    def __init__(
        self,
        sandbox: SandboxLayout,
        *,
        workers: int = 2,
        server_type: Literal["uvicorn", "gunicorn"] = "uvicorn",
        worker_refresh_interval: int | None = None,
        worker_refresh_batch_size: int | None = None,
        worker_timeout: int | None = None,
        port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
        startup_timeout: float = 180.0,
        request_timeout: float = 60.0,
    ) -> None:
        """
        Configure the server; ``start()`` (or ``with``) runs it.

        :param server_type: ``[api] server_type`` (``gunicorn`` supports rolling worker refresh).
        :param worker_refresh_interval: ``[api] worker_refresh_interval`` seconds (gunicorn only).
        :param worker_timeout: ``--worker-timeout``; also gunicorn's graceful timeout.
        :param extra_env: environment overrides for this server only.
        """
        self.sandbox = sandbox
        self.workers = workers
        self.server_type = server_type
        self.worker_refresh_interval = worker_refresh_interval
        self.worker_refresh_batch_size = worker_refresh_batch_size
        self.worker_timeout = worker_timeout
        self.port = port or free_port()
        self.extra_env = dict(extra_env or {})
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = sandbox.logs_dir / f"api-server-{self.port}.log"
        self.tmpdir = str(Path(sandbox.tmpdir) / f"api-{self.port}")
        self.started_at: float | None = None
        self.ready_after: float | None = None
        self._log_file: IO[bytes] | None = None
        self._token: str | None = None
        self._known: dict[int, float] = {}  # pid -> create_time of every process seen in the tree

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Environment of the api-server process."""
        env = dict(self.sandbox.env)
        env["TMPDIR"] = self.tmpdir
        env["AIRFLOW__API__SERVER_TYPE"] = self.server_type
        env["AIRFLOW__API__HOST"] = HOST
        env["AIRFLOW__API__PORT"] = str(self.port)
        env["AIRFLOW__API__BASE_URL"] = self.base_url
        if self.worker_refresh_interval is not None:
            env["AIRFLOW__API__WORKER_REFRESH_INTERVAL"] = str(self.worker_refresh_interval)
        if self.worker_refresh_batch_size is not None:
            env["AIRFLOW__API__WORKER_REFRESH_BATCH_SIZE"] = str(self.worker_refresh_batch_size)
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The ``airflow api-server`` command line (the flags exist on Airflow 3.0 to 3.4), run by ``_RUN_SCRIPT``."""
        cmd = [
            sys.executable,
            "-c",
            _RUN_SCRIPT,
            self.sandbox.airflow_bin,
            "api-server",
            "-H",
            HOST,
            "-p",
            str(self.port),
        ]
        cmd += ["--workers", str(self.workers)]
        if self.worker_timeout is not None:
            cmd += ["--worker-timeout", str(self.worker_timeout)]
        return cmd

    def start(self) -> ApiServer:
        """Start the server in its own session and wait until it answers health checks."""
        if self.proc is not None:
            raise SandboxError("api-server already started")
        Path(self.tmpdir).mkdir(parents=True, exist_ok=True)
        self.sandbox.track(self)
        log = self._log_file = self.log_path.open("ab")
        log.write(f"$ {' '.join(self.command())}\n".encode())
        log.flush()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            env=self.env(),
            cwd=self.sandbox.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_ready()
        self.ready_after = time.monotonic() - self.started_at
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll ``/api/v2/monitor/health`` until HTTP 200; raise with the log tail otherwise."""
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        last_error = "no attempt"
        while time.monotonic() < deadline:
            self._remember_tree()
            if not self.running:
                rc = None if self.proc is None else self.proc.returncode
                raise SandboxError(f"api-server exited with {rc}:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5.0)
                if r.status_code == 200:
                    return
                last_error = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                last_error = repr(e)
            time.sleep(0.5)
        restarts = self.log_text().count("] died")
        hint = (
            f"; uvicorn's supervisor replaced {restarts} workers: it kills a worker that misses its 5 s ping, "
            "as starting workers do under heavy CPU load"
            if restarts >= 3
            else ""
        )
        raise SandboxError(f"api-server not ready in time ({last_error}{hint}):\n{self.log_tail()}")

    def terminate_root(self, timeout: float = 30.0) -> bool:
        """
        SIGTERM only the root process and wait for it to exit (no SIGKILL, no cleanup).

        Lets a test observe what a *graceful* shutdown leaves behind; call ``stop()`` afterwards.
        Returns whether the root exited within ``timeout``.
        """
        if not self.running or self.proc is None:
            return True
        self._remember_tree()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = 10.0) -> None:
        """
        Stop everything this server started, by PID; idempotent and safe on failures.

        The live tree goes first (``stop_process_tree``), then processes once seen in the tree that
        were reparented away, then anything still running with this server's ``TMPDIR`` (orphaned
        Managers).
        """
        try:
            if self.proc is not None:
                self._remember_tree()
                stop_process_tree(self.proc, grace=grace)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=5.0)
            leftovers = {p.pid: p for p in self._known_processes()}
            for m in find_manager_processes(self.tmpdir):
                with contextlib.suppress(psutil.Error):
                    leftovers.setdefault(m.pid, psutil.Process(m.pid))
            for p in find_processes_with_env("TMPDIR", self.tmpdir):
                leftovers.setdefault(p.pid, p)
            if leftovers:
                stop_processes(leftovers.values(), grace=2.0)
        finally:
            if self._log_file is not None:
                with contextlib.suppress(OSError):
                    self._log_file.close()
                self._log_file = None
            self.sandbox.untrack(self)

    # -- processes -------------------------------------------------------------------------------
    def _remember_tree(self) -> None:
        if self.running and self.proc is not None:
            for p in process_tree(self.proc.pid):
                with contextlib.suppress(psutil.Error):
                    self._known[p.pid] = p.create_time()

    def _known_processes(self) -> list[psutil.Process]:
        """Live processes once seen in the tree that are still the same process (pid not reused)."""
        procs = (same_process(pid, create_time) for pid, create_time in self._known.items())
        return [p for p in procs if p is not None]

    def process_tree(self) -> list[psutil.Process]:
        """The api-server process and all its current descendants."""
        if not self.running or self.proc is None:
            return []
        self._remember_tree()
        return process_tree(self.proc.pid)

    def tree_pids(self) -> set[int]:
        """PIDs of the api-server process and its current descendants."""
        return {p.pid for p in self.process_tree()}

    def worker_pids(self) -> list[int]:
        """PIDs of the HTTP workers: children of the root that listen on the server port."""
        tree = self.process_tree()
        if not tree:
            return []
        root = tree[0]
        workers = [p.pid for p in tree[1:] if _ppid(p) == root.pid and self._listens(p)]
        if not workers and self._listens(root):
            return [root.pid]  # single-process server
        return sorted(workers)

    def managers(self) -> list[ManagerProcess]:
        """Manager processes started under this server's TMPDIR (in or out of the tree)."""
        return find_manager_processes(self.tmpdir)

    def _listens(self, proc: psutil.Process) -> bool:
        try:
            return any(
                c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.port
                for c in proc.net_connections(kind="tcp")
            )
        except psutil.Error:
            return False

    def serving_pid(self, client_port: int) -> int | None:
        """
        PID of the worker holding the server side of the connection from ``client_port``.

        Processes forked by a worker (e.g. Managers) inherit its sockets, so workers win over them.
        """
        holders: list[int] = []
        for p in self.process_tree():
            try:
                if any(
                    c.raddr and c.raddr.port == client_port and c.laddr and c.laddr.port == self.port
                    for c in p.net_connections(kind="tcp")
                ):
                    holders.append(p.pid)
            except psutil.Error:
                continue
        workers = set(self.worker_pids())
        preferred = [pid for pid in holders if pid in workers]
        candidates = preferred or holders
        return candidates[0] if candidates else None

    def log_text(self) -> str:
        """Everything the server wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def _ppid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None
