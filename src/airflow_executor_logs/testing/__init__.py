"""The test kit shipped with the package: a real (loopback) Kubernetes API, a task's pod, opt-in pytest fixtures.

Import-light on purpose: nothing here imports Airflow or the ``kubernetes`` client (``task_pods`` imports the
provider when called). The pytest fixtures are opt-in:
``pytest_plugins = ["airflow_executor_logs.testing.pytest_plugin"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_executor_logs.testing import kube_api
from airflow_executor_logs.testing.kube_api import *  # noqa: F403 - re-exported, listed in kube_api.__all__
from airflow_executor_logs.testing.kube_process import FakeKubeProcess as FakeKubeProcess

if TYPE_CHECKING:
    from airflow_executor_logs.testing.sandbox import AirflowSandbox as AirflowSandbox
    from airflow_executor_logs.testing.sandbox import ApiServer as ApiServer
    from airflow_executor_logs.testing.sandbox import LogResponse as LogResponse
    from airflow_executor_logs.testing.sandbox import SandboxError as SandboxError

#: The api-server sandbox (``testing.sandbox``), imported on first use: it needs httpx.
_SANDBOX_NAMES = ("AirflowSandbox", "ApiServer", "LogResponse", "SandboxError")

__all__ = [  # kube_api's names, the process that serves them, and the sandbox
    *kube_api.__all__,
    "FakeKubeProcess",
    *_SANDBOX_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _SANDBOX_NAMES:
        from airflow_executor_logs.testing import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
