"""
A sandboxed Airflow installation plus a real ``airflow api-server``, for end-to-end tests and the demo.

* :mod:`.home`: the seeded task's names, the templates (package data), the kubeconfig, the environment;
* :mod:`.seeding`: migrate, serialize the DAG, seed RUNNING task instances (in subprocesses);
* :mod:`.sandbox`: :class:`AirflowSandbox`, an isolated ``AIRFLOW_HOME`` with its own ``TMPDIR``;
* :mod:`.api_server`: :class:`ApiServer`, a real ``airflow api-server`` on 127.0.0.1, stopped by PID;
* :mod:`.client`: task-log requests (:class:`LogResponse`) that record the worker serving them.

Nothing here imports Airflow: all Airflow work happens in subprocesses of the current interpreter's
environment, which imports this package as installed (a wheel or an editable install).
"""

from __future__ import annotations

from tests.support.sandbox.api_server import ApiServer
from tests.support.sandbox.client import LogResponse, task_log_path
from tests.support.sandbox.home import (
    DAG_ID,
    HOST,
    QUEUED_BY_JOB_ID,
    RUN_ID,
    TASK_ID,
    TI_HOSTNAME,
    UNREACHABLE_KUBECONFIG,
    SandboxError,
    free_port,
    sandbox_env,
    write_unreachable_kubeconfig,
)
from tests.support.sandbox.sandbox import AirflowSandbox
from tests.support.sandbox.seeding import seed_running_task

__all__ = [
    "DAG_ID",
    "HOST",
    "QUEUED_BY_JOB_ID",
    "RUN_ID",
    "TASK_ID",
    "TI_HOSTNAME",
    "UNREACHABLE_KUBECONFIG",
    "AirflowSandbox",
    "ApiServer",
    "LogResponse",
    "SandboxError",
    "free_port",
    "sandbox_env",
    "seed_running_task",
    "task_log_path",
    "write_unreachable_kubeconfig",
]
