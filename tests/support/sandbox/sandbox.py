"""``AirflowSandbox``: an isolated ``AIRFLOW_HOME`` with RUNNING task instances, and its life cycle."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from airflow_executor_logs.utils.processes import ManagerProcess, find_manager_processes, stop_processes
from airflow_executor_logs_testing.lifecycle import Lifecycle
from tests.support.process_control import find_processes_with_env
from tests.support.sandbox import home
from tests.support.sandbox.api_server import ApiServer
from tests.support.sandbox.home import SandboxError
from tests.support.sandbox.seeding import ExtraRun, run_logged, seed_running_task

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class AirflowSandbox(Lifecycle):
    """
    An isolated Airflow environment with a RUNNING KubernetesExecutor task instance (and optionally more).

    Layout under ``root``: ``airflow_home/`` (config, sqlite DB, task logs), ``tmp/`` (``TMPDIR`` of
    every subprocess), ``dags/`` (one DAG file) and ``logs/`` (output of the commands we ran).
    All Airflow work runs in subprocesses of the current interpreter's environment.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | os.PathLike[str] | None = home.UNREACHABLE_KUBECONFIG,
        namespace: str = "default",
        logging_config_class: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        keep: bool | None = None,
        migrate_timeout: float = 300.0,
        extra_runs: Sequence[ExtraRun] = (),
    ) -> None:
        """
        Configure (but do not yet create) the sandbox.

        :param kubeconfig: kubeconfig for the KubernetesExecutor, ``UNREACHABLE_KUBECONFIG`` for one
            pointing at a closed local port, or ``None`` to leave the kubernetes config untouched.
        :param logging_config_class: value for ``AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS``.
        :param extra_env: extra/overriding environment for every subprocess.
        :param base_dir: where to create the sandbox directory (default: the system temp dir).
        :param keep: keep the directory on exit (default: ``$AIRFLOW_EXECUTOR_LOGS_KEEP_SANDBOX``).
        :param extra_runs: ``(run_id, executor)`` pairs seeding more RUNNING task instances (same DAG and
            task, one DagRun each). Every executor named must be in ``[core] executor``: set
            ``AIRFLOW__CORE__EXECUTOR`` in ``extra_env``.
        """
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.logging_config_class = logging_config_class
        self.extra_env = dict(extra_env or {})
        self.base_dir = base_dir
        self.keep = bool(os.environ.get("AIRFLOW_EXECUTOR_LOGS_KEEP_SANDBOX")) if keep is None else keep
        self.migrate_timeout = migrate_timeout
        self.dag_id = home.DAG_ID
        self.task_id = home.TASK_ID
        self.run_id = home.RUN_ID
        self.try_number = 1
        self.hostname = home.TI_HOSTNAME
        self.queued_by_job_id = home.QUEUED_BY_JOB_ID
        self.executor = "KubernetesExecutor"
        self.extra_runs: tuple[ExtraRun, ...] = tuple(extra_runs)
        #: Task instance id per seeded run id (filled by ``create()``).
        self.ti_ids: dict[str, str] = {}
        self.dag_version_id: str | None = None
        self._root: Path | None = None
        self._servers: list[ApiServer] = []
        self.env: dict[str, str] = {}

    # -- paths -----------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The sandbox directory (only valid after ``prepare()`` or ``create()``)."""
        if self._root is None:
            raise SandboxError("sandbox not created; use it as a context manager or call create()")
        return self._root

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow_home"

    @property
    def tmpdir(self) -> str:
        """``TMPDIR`` of every sandbox subprocess: Manager ``pymp-*`` sockets land here."""
        return str(self.root / "tmp")

    @property
    def dags_folder(self) -> Path:
        return self.root / "dags"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def db_path(self) -> Path:
        return self.airflow_home / "airflow.db"

    @property
    def airflow_bin(self) -> str:
        """The ``airflow`` entry point of the current interpreter's environment."""
        return home.airflow_bin(sys.executable)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> AirflowSandbox:
        """:meth:`create` it (the :class:`Lifecycle` name)."""
        return self.create()

    def stop(self) -> None:
        """:meth:`cleanup` (the :class:`Lifecycle` name)."""
        self.cleanup()

    def prepare(self) -> AirflowSandbox:
        """Create the directory layout, the kubeconfig and the environment (no subprocess, no DB yet)."""
        base = Path(self.base_dir) if self.base_dir is not None else None
        self._root = Path(tempfile.mkdtemp(prefix="afel-", dir=base)).resolve()
        for d in (self.airflow_home, Path(self.tmpdir), self.dags_folder, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        kubeconfig: Path | None = None
        if self.kubeconfig == home.UNREACHABLE_KUBECONFIG:
            kubeconfig = home.write_unreachable_kubeconfig(self.root / "kubeconfig.yaml", namespace=self.namespace)
        elif self.kubeconfig is not None:
            kubeconfig = Path(self.kubeconfig)
        self.env = home.sandbox_env(
            os.environ,
            root=self.root,
            kubeconfig=kubeconfig,
            namespace=self.namespace,
            logging_config_class=self.logging_config_class,
            extra_env=self.extra_env,
        )
        return self

    def create(self) -> AirflowSandbox:
        """``prepare()``, then migrate the DB, serialize the DAG and seed the RUNNING task instances."""
        self.prepare()
        seeded = seed_running_task(
            self.env,
            self.root,
            dags_folder=self.dags_folder,
            log_path=self.logs_dir / "commands.log",
            executor=self.executor,
            timeout=self.migrate_timeout,
            extra_runs=self.extra_runs,
        )
        self.dag_version_id = seeded["dag_version_id"]
        self.ti_ids = {self.run_id: seeded["ti_id"]}
        self.ti_ids.update({run_id: seeded[f"ti_id:{run_id}"] for run_id, _ in self.extra_runs})
        return self

    def cleanup(self) -> None:
        """Stop servers, kill anything left that belongs to the sandbox, remove the directory."""
        for server in list(self._servers):
            server.stop()
        if self._root is None:
            return
        self.kill_leftovers()
        if not self.keep:
            shutil.rmtree(self._root, ignore_errors=True)

    def kill_leftovers(self) -> list[int]:
        """Kill every process still tied to the sandbox (Managers under its TMPDIR, its env); return pids."""
        procs: dict[int, psutil.Process] = {}
        for m in find_manager_processes(self.tmpdir):
            with contextlib.suppress(psutil.NoSuchProcess):
                procs[m.pid] = psutil.Process(m.pid)
        for p in find_processes_with_env("AIRFLOW_HOME", str(self.airflow_home)):
            procs[p.pid] = p
        if procs:
            stop_processes(procs.values(), grace=3.0)
        return sorted(procs)

    # -- commands --------------------------------------------------------------------------------
    def airflow(self, *args: str, timeout: float = 300.0) -> str:
        """Run ``airflow <args>`` in the sandbox env; return its combined output."""
        return self.run([self.airflow_bin, *args], timeout=timeout)

    def python(self, *args: str, timeout: float = 300.0) -> str:
        """Run the current interpreter with ``args`` in the sandbox env; return its combined output."""
        return self.run([sys.executable, *args], timeout=timeout)

    def run(self, cmd: Sequence[str], *, timeout: float = 300.0) -> str:
        """Run ``cmd`` in the sandbox env (own session, stopped by PID on timeout)."""
        return run_logged(cmd, env=self.env, cwd=self.root, log_path=self.logs_dir / "commands.log", timeout=timeout)

    # -- servers ---------------------------------------------------------------------------------
    def api_server(self, **kwargs: Any) -> ApiServer:
        """An ``ApiServer`` for this sandbox (see ``ApiServer`` for arguments); ``cleanup()`` stops it."""
        return ApiServer(self, **kwargs)

    def track(self, server: ApiServer) -> None:
        """Remember a started server, so that ``cleanup()`` stops it."""
        self._servers.append(server)

    def untrack(self, server: ApiServer) -> None:
        with contextlib.suppress(ValueError):
            self._servers.remove(server)

    def managers(self) -> list[ManagerProcess]:
        """Manager server processes whose socket is under this sandbox's TMPDIR."""
        return find_manager_processes(self.tmpdir)
