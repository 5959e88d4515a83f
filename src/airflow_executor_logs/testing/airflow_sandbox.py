"""The api-server sandbox under its former module name; it lives in :mod:`airflow_executor_logs.testing.sandbox`."""

from __future__ import annotations

from airflow_executor_logs.testing.sandbox import (
    DAG_ID,
    HOST,
    QUEUED_BY_JOB_ID,
    RUN_ID,
    TASK_ID,
    TI_HOSTNAME,
    UNREACHABLE_KUBECONFIG,
    AirflowSandbox,
    ApiServer,
    LogResponse,
    SandboxError,
    free_port,
    seed_running_task,
    write_unreachable_kubeconfig,
)

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
    "seed_running_task",
    "write_unreachable_kubeconfig",
]
