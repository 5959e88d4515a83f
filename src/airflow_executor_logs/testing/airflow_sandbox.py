"""
A sandboxed Airflow installation plus a real ``airflow api-server`` for end-to-end tests.

``AirflowSandbox`` builds an isolated ``AIRFLOW_HOME`` (sqlite DB, one DAG, its own ``TMPDIR`` so
``multiprocessing`` Manager sockets land inside it) and seeds a RUNNING task instance that claims to
run on the KubernetesExecutor. ``ApiServer`` runs ``airflow api-server`` against it, bound to
127.0.0.1 only, and always stops its whole process tree by PID.

Nothing in here imports Airflow: all Airflow work happens in subprocesses using the Airflow of the
current interpreter (``Path(sys.executable).parent / "airflow"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import httpx
import psutil

from airflow_executor_logs.utils.processes import (
    ManagerProcess,
    find_manager_processes,
    find_processes_with_env,
    process_tree,
    same_process,
    stop_process_tree,
    stop_processes,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

__all__ = [
    "UNREACHABLE_KUBECONFIG",
    "AirflowSandbox",
    "ApiServer",
    "LogResponse",
    "SandboxError",
    "free_port",
    "seed_running_task",
    "write_unreachable_kubeconfig",
]

#: Pass as ``kubeconfig`` to get a kubeconfig whose API server is a closed 127.0.0.1 port.
UNREACHABLE_KUBECONFIG = "unreachable"

HOST = "127.0.0.1"
DAG_ID = "executor_logs_demo"
TASK_ID = "running_task"
RUN_ID = "executor_logs_demo__running"
TI_HOSTNAME = "executor-logs-demo-running-task-pod"
QUEUED_BY_JOB_ID = 4242
JWT_SECRET = "airflow-executor-logs-sandbox-jwt-secret-0123456789abcdef"
API_SECRET_KEY = "airflow-executor-logs-sandbox-secret-key"

# Package source root (``.../src``), so subprocesses import this checkout of the package.
_SRC_ROOT = Path(__file__).resolve().parents[2]

_DAG_FILE = """\
from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id={dag_id!r},
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    tags=["airflow-executor-logs"],
):
    BashOperator(task_id={task_id!r}, bash_command="sleep 3600")
"""

_SEED_SCRIPT = '''\
"""Seed RUNNING DagRuns/TaskInstances for the serialized demo DAG (run inside the sandbox env)."""
import datetime
import json
import sys

from airflow.models.taskinstance import TaskInstance
from airflow.utils import timezone
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType

try:
    from airflow.models.dagbag import DBDagBag
except ImportError:  # core 3.0: no DBDagBag yet
    from airflow.models.serialized_dag import SerializedDagModel

    def latest_dag(dag_id, session):
        return SerializedDagModel.get_dag(dag_id, session=session)
else:

    def latest_dag(dag_id, session):
        return DBDagBag().get_latest_version_of_dag(dag_id, session=session)


params = json.loads(sys.argv[1])
now = timezone.utcnow()
result = {{}}
with create_session() as session:
    dag = latest_dag(params["dag_id"], session)
    if dag is None:
        raise SystemExit(f"DAG {{params['dag_id']}} is not serialized in the DB")
    for n, run in enumerate(params["runs"]):
        # Each run needs its own logical date; the first (main) run keeps ``now``.
        logical_date = now - datetime.timedelta(seconds=n)
        dag_run = dag.create_dagrun(
            run_id=run["run_id"],
            logical_date=logical_date,
            data_interval=(logical_date, logical_date),
            run_after=logical_date,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.RUNNING,
            start_date=now,
            session=session,
        )
        session.flush()
        ti = session.query(TaskInstance).filter_by(
            dag_id=params["dag_id"], run_id=run["run_id"], task_id=params["task_id"], map_index=-1
        ).one()
        ti.state = TaskInstanceState.RUNNING
        ti.try_number = 1
        ti.executor = run["executor"]
        ti.hostname = params["hostname"]
        ti.queued_by_job_id = params["queued_by_job_id"]
        ti.queued_dttm = now
        ti.start_date = now
        session.flush()
        if n == 0:
            result = {{"dag_version_id": str(ti.dag_version_id), "ti_id": str(ti.id)}}
        else:
            result[f"ti_id:{{run['run_id']}}"] = str(ti.id)
    print(json.dumps(result))
'''

_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: unreachable
  cluster:
    server: https://{host}:{port}
    insecure-skip-tls-verify: true
contexts:
- name: unreachable
  context:
    cluster: unreachable
    user: nobody
    namespace: {namespace}
current-context: unreachable
users:
- name: nobody
  user:
    token: not-a-real-token
"""


class SandboxError(RuntimeError):
    """A sandbox subprocess failed or the API server did not come up."""


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that is free right now (nothing listens on it after return)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_unreachable_kubeconfig(path: Path, *, namespace: str = "default") -> Path:
    """Write a kubeconfig whose API server is a closed 127.0.0.1 port (requests fail fast)."""
    path.write_text(_KUBECONFIG.format(host=HOST, port=free_port(), namespace=namespace))
    return path


def _run_logged(cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout: float) -> str:
    """Run ``cmd`` in its own session, append its output to ``log_path``; stop its tree on timeout."""
    with log_path.open("ab") as log, tempfile.TemporaryFile() as out:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process_tree(proc, grace=5.0)
            raise SandboxError(f"{cmd!r} timed out after {timeout}s (log: {log_path})") from None
        finally:
            stop_process_tree(proc, grace=5.0)  # no-op once it has exited
            out.seek(0)
            output = out.read()
            log.write(output)
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            tail = "\n".join(text.splitlines()[-40:])
            raise SandboxError(f"{cmd!r} exited with {proc.returncode}:\n{tail}")
        return text


def seed_running_task(
    env: Mapping[str, str],
    work_dir: Path,
    *,
    dags_folder: Path,
    log_path: Path,
    executor: str | None = "KubernetesExecutor",
    timeout: float = 300.0,
    extra_runs: Sequence[tuple[str, str | None]] = (),
) -> dict[str, str]:
    """
    Migrate the DB ``env`` points at, serialize the demo DAG and seed its RUNNING task instance.

    ``extra_runs`` are ``(run_id, executor)`` pairs: more DagRuns of the same DAG, each with its task
    instance RUNNING on ``executor`` (same hostname and ``queued_by_job_id`` as the main one).

    Works on Airflow 3.0 to 3.4; returns the ids the seeding printed (``dag_version_id``, ``ti_id``,
    and ``ti_id:<run_id>`` per extra run).
    """
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    dags_folder.mkdir(parents=True, exist_ok=True)
    (dags_folder / f"{DAG_ID}.py").write_text(_DAG_FILE.format(dag_id=DAG_ID, task_id=TASK_ID))
    for args in (("db", "migrate"), ("dags", "reserialize")):
        _run_logged([airflow_bin, *args], env=env, cwd=work_dir, log_path=log_path, timeout=timeout)
    script = work_dir / "seed_running_ti.py"
    script.write_text(_SEED_SCRIPT.format())
    run_ids = [RUN_ID, *(run_id for run_id, _ in extra_runs)]
    if len(set(run_ids)) != len(run_ids):
        raise SandboxError(f"run ids must be unique: {run_ids}")
    params = {
        "dag_id": DAG_ID,
        "task_id": TASK_ID,
        "runs": [
            {"run_id": RUN_ID, "executor": executor},
            *({"run_id": run_id, "executor": run_executor} for run_id, run_executor in extra_runs),
        ],
        "hostname": TI_HOSTNAME,
        "queued_by_job_id": QUEUED_BY_JOB_ID,
    }
    out = _run_logged(
        [sys.executable, str(script), json.dumps(params)], env=env, cwd=work_dir, log_path=log_path, timeout=timeout
    )
    last = [line for line in out.splitlines() if line.startswith("{")]
    if not last:
        raise SandboxError(f"seeding printed no result:\n{out}")
    return dict(json.loads(last[-1]))


class AirflowSandbox:
    """
    An isolated Airflow environment with a RUNNING KubernetesExecutor task instance (and optionally more).

    Layout under ``root``: ``airflow_home/`` (config, sqlite DB, task logs), ``tmp/`` (``TMPDIR`` of
    every subprocess), ``dags/`` (one DAG file) and ``logs/`` (output of the commands we ran).
    """

    def __init__(
        self,
        *,
        kubeconfig: str | os.PathLike[str] | None = UNREACHABLE_KUBECONFIG,
        namespace: str = "default",
        logging_config_class: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        keep: bool | None = None,
        migrate_timeout: float = 300.0,
        extra_runs: Sequence[tuple[str, str | None]] = (),
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
        self.dag_id = DAG_ID
        self.task_id = TASK_ID
        self.run_id = RUN_ID
        self.try_number = 1
        self.hostname = TI_HOSTNAME
        self.queued_by_job_id = QUEUED_BY_JOB_ID
        self.executor = "KubernetesExecutor"
        self.extra_runs: tuple[tuple[str, str | None], ...] = tuple(extra_runs)
        #: Task instance id per seeded run id (filled by ``create()``).
        self.ti_ids: dict[str, str] = {}
        self.dag_version_id: str | None = None
        self._root: Path | None = None
        self._servers: list[ApiServer] = []
        self.env: dict[str, str] = {}

    # -- paths -----------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The sandbox directory (only valid after ``create()``)."""
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
        return str(Path(sys.executable).parent / "airflow")

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> AirflowSandbox:
        try:
            self.create()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def create(self) -> AirflowSandbox:
        """Create the directory, migrate the DB, serialize the DAG and seed the RUNNING task."""
        base = Path(self.base_dir) if self.base_dir is not None else None
        self._root = Path(tempfile.mkdtemp(prefix="afel-", dir=base)).resolve()
        for d in (self.airflow_home, Path(self.tmpdir), self.dags_folder, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.env = self._build_env()
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

    # -- environment -----------------------------------------------------------------------------
    def _build_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        pythonpath = [str(_SRC_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(dict.fromkeys(pythonpath)),
                "TMPDIR": self.tmpdir,
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
                "AIRFLOW__API__SECRET_KEY": API_SECRET_KEY,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.airflow_home / "logs"),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3600",
                "NO_PROXY": "*",
                "no_proxy": "*",
            }
        )
        if self.kubeconfig is not None:
            if self.kubeconfig == UNREACHABLE_KUBECONFIG:
                kubeconfig = write_unreachable_kubeconfig(self.root / "kubeconfig.yaml", namespace=self.namespace)
            else:
                kubeconfig = Path(self.kubeconfig)
            env.update(
                {
                    "KUBECONFIG": str(kubeconfig),
                    "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(kubeconfig),
                    "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
                    "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": self.namespace,
                }
            )
        if self.logging_config_class:
            env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] = self.logging_config_class
        env.update(self.extra_env)
        return env

    # -- commands --------------------------------------------------------------------------------
    def airflow(self, *args: str, timeout: float = 300.0) -> str:
        """Run ``airflow <args>`` in the sandbox env; return its combined output."""
        return self.run([self.airflow_bin, *args], timeout=timeout)

    def python(self, *args: str, timeout: float = 300.0) -> str:
        """Run the current interpreter with ``args`` in the sandbox env; return its combined output."""
        return self.run([sys.executable, *args], timeout=timeout)

    def run(self, cmd: Sequence[str], *, timeout: float = 300.0) -> str:
        """Run ``cmd`` in the sandbox env (own session, stopped by PID on timeout)."""
        return _run_logged(cmd, env=self.env, cwd=self.root, log_path=self.logs_dir / "commands.log", timeout=timeout)

    # -- servers ---------------------------------------------------------------------------------
    def api_server(self, **kwargs: Any) -> ApiServer:
        """An ``ApiServer`` for this sandbox (see ``ApiServer`` for arguments); ``cleanup()`` stops it."""
        return ApiServer(self, **kwargs)

    def managers(self) -> list[ManagerProcess]:
        """Manager server processes whose socket is under this sandbox's TMPDIR."""
        return find_manager_processes(self.tmpdir)


@dataclass(frozen=True)
class LogResponse:
    """Result of one task-log request."""

    status_code: int
    text: str
    worker_pid: int | None
    elapsed: float


class ApiServer:
    """
    A real ``airflow api-server`` running against an ``AirflowSandbox`` on 127.0.0.1.

    Every server gets its own ``TMPDIR`` (``<sandbox tmpdir>/api-<port>``), so the Manager processes
    its workers fork can be attributed to it even after they were orphaned.
    """

    def __init__(
        self,
        sandbox: AirflowSandbox,
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
    def __enter__(self) -> ApiServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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
        """The ``airflow api-server`` command line (flags exist in Airflow 3.2 and 3.3)."""
        cmd = [self.sandbox.airflow_bin, "api-server", "-H", HOST, "-p", str(self.port)]
        cmd += ["--workers", str(self.workers)]
        if self.worker_timeout is not None:
            cmd += ["--worker-timeout", str(self.worker_timeout)]
        return cmd

    def start(self) -> ApiServer:
        """Start the server in its own session and wait until it answers health checks."""
        if self.proc is not None:
            raise SandboxError("api-server already started")
        Path(self.tmpdir).mkdir(parents=True, exist_ok=True)
        self.sandbox._servers.append(self)
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
        raise SandboxError(f"api-server not ready in time ({last_error}):\n{self.log_tail()}")

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
            with contextlib.suppress(ValueError):
                self.sandbox._servers.remove(self)

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

    # -- HTTP ------------------------------------------------------------------------------------
    def token(self, refresh: bool = False) -> str:
        """A JWT from ``GET /auth/token`` (simple auth manager, all users are admins)."""
        if self._token is None or refresh:
            r = httpx.get(f"{self.base_url}/auth/token", timeout=self.request_timeout)
            if r.status_code not in (200, 201):
                raise SandboxError(f"GET /auth/token -> {r.status_code}: {r.text[:500]}")
            self._token = str(r.json()["access_token"])
        return self._token

    def request_headers(self, *, ndjson: bool = False) -> dict[str, str]:
        """Headers of a task-log request: the bearer token and the wanted response format."""
        return {
            "Authorization": f"Bearer {self.token()}",
            "Accept": "application/x-ndjson" if ndjson else "application/json",
        }

    def task_log_path(self, try_number: int = 1, *, run_id: str | None = None) -> str:
        """URL path of a seeded task instance's log for ``try_number`` (``run_id``: default the main run)."""
        sb = self.sandbox
        run = sb.run_id if run_id is None else run_id
        return f"/api/v2/dags/{sb.dag_id}/dagRuns/{run}/taskInstances/{sb.task_id}/logs/{try_number}"

    def fetch_task_log(
        self,
        try_number: int = 1,
        *,
        ndjson: bool = False,
        params: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> LogResponse:
        """Request the log of ``run_id`` (default: the main run) on a fresh connection; record the serving worker."""
        headers = self.request_headers(ndjson=ndjson)
        started = time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=self.request_timeout) as client:
            r = client.get(self.task_log_path(try_number, run_id=run_id), headers=headers, params=dict(params or {}))
            elapsed = time.monotonic() - started
            worker_pid = None
            stream = r.extensions.get("network_stream")
            if stream is not None:  # connection is still open: find who holds its server side
                with contextlib.suppress(Exception):
                    worker_pid = self.serving_pid(int(stream.get_extra_info("client_addr")[1]))
        return LogResponse(status_code=r.status_code, text=r.text, worker_pid=worker_pid, elapsed=elapsed)

    def get_task_log(self, try_number: int = 1, ndjson: bool = False) -> tuple[int, str]:
        """``GET .../taskInstances/{task}/logs/{try_number}`` as ``(status_code, text)``."""
        r = self.fetch_task_log(try_number, ndjson=ndjson)
        return r.status_code, r.text


def _ppid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None
