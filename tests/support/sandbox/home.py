"""
The sandbox's ``AIRFLOW_HOME``: names of the seeded task, its templates, the kubeconfig and the environment.

Pure functions only (files and sockets, no subprocess), so they are tested directly.
"""

from __future__ import annotations

import os
import socket
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

HOST = "127.0.0.1"
DAG_ID = "executor_logs_demo"
TASK_ID = "running_task"
RUN_ID = "executor_logs_demo__running"
TI_HOSTNAME = "executor-logs-demo-running-task-pod"
QUEUED_BY_JOB_ID = 4242
JWT_SECRET = "airflow-executor-logs-sandbox-jwt-secret-0123456789abcdef0123456789abcdef"
API_SECRET_KEY = "airflow-executor-logs-sandbox-secret-key-0123456789abcdef0123456789abcdef"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

#: Pass as ``kubeconfig`` to get a kubeconfig whose API server is a closed 127.0.0.1 port.
UNREACHABLE_KUBECONFIG = "unreachable"


class SandboxError(RuntimeError):
    """A sandbox subprocess failed or the API server did not come up."""


class SandboxLayout(Protocol):
    """What an api-server and its log client ask of the sandbox they run in (``AirflowSandbox`` is the one)."""

    env: dict[str, str]
    dag_id: str
    task_id: str
    run_id: str

    @property
    def root(self) -> Path: ...
    @property
    def tmpdir(self) -> str: ...
    @property
    def logs_dir(self) -> Path: ...
    @property
    def airflow_bin(self) -> str: ...
    def track(self, server: Any) -> None: ...
    def untrack(self, server: Any) -> None: ...


def template(name: str) -> str:
    """The text of a template shipped as package data (``templates/<name>``)."""
    return (files(__package__) / "templates" / name).read_text(encoding="utf-8")


def dag_file_text(dag_id: str = DAG_ID, task_id: str = TASK_ID) -> str:
    """The sandbox's one DAG: a single task that would sleep for an hour."""
    return template("dag_file.py.tmpl").format(dag_id=dag_id, task_id=task_id)


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that is free right now (nothing listens on it after return)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_unreachable_kubeconfig(path: Path, *, namespace: str = "default") -> Path:
    """Write a kubeconfig whose API server is a closed 127.0.0.1 port (requests fail fast)."""
    path.write_text(template("kubeconfig.yaml.tmpl").format(host=HOST, port=free_port(), namespace=namespace))
    return path


def sandbox_env(
    base: Mapping[str, str],
    *,
    root: Path,
    kubeconfig: Path | None,
    namespace: str = "default",
    logging_config_class: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """
    The environment of every sandbox subprocess: ``base`` without its ``AIRFLOW*`` variables, then the sandbox's.

    Layout under ``root``: ``airflow_home/`` (sqlite DB, task logs), ``tmp/`` (``TMPDIR``: Manager sockets
    land there), ``dags/``. ``extra_env`` wins over everything.
    """
    home = root / "airflow_home"
    env = {k: v for k, v in base.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "TMPDIR": str(root / "tmp"),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__API__SECRET_KEY": API_SECRET_KEY,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3600",
            "NO_PROXY": "*",
            "no_proxy": "*",
        }
    )
    if kubeconfig is not None:
        env.update(
            {
                "KUBECONFIG": str(kubeconfig),
                "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(kubeconfig),
                "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
                "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": namespace,
            }
        )
    if logging_config_class:
        env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] = logging_config_class
    env.update(extra_env or {})
    return env


def airflow_bin(python: str | os.PathLike[str]) -> str:
    """The ``airflow`` entry point next to the interpreter ``python``."""
    return str(Path(python).parent / "airflow")
