"""The test kit shipped with the package: a real (loopback) Kubernetes API, a task's pod, opt-in pytest fixtures.

Import-light on purpose: nothing here imports Airflow or the ``kubernetes`` client (``task_pods`` imports the
provider when called). The pytest fixtures are opt-in:
``pytest_plugins = ["airflow_executor_logs.testing.pytest_plugin"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_executor_logs.testing import kube_api
from airflow_executor_logs.testing.kube_api import (  # re-exported: redundant aliases
    FakeKubeAPI as FakeKubeAPI,
)
from airflow_executor_logs.testing.kube_api import (
    Fault as Fault,
)
from airflow_executor_logs.testing.kube_api import (
    FaultKind as FaultKind,
)
from airflow_executor_logs.testing.kube_api import (
    LabelSelectorError as LabelSelectorError,
)
from airflow_executor_logs.testing.kube_api import (
    RecordedRequest as RecordedRequest,
)
from airflow_executor_logs.testing.kube_api import (
    Requirement as Requirement,
)
from airflow_executor_logs.testing.kube_api import (
    Route as Route,
)
from airflow_executor_logs.testing.kube_api import (
    Selector as Selector,
)
from airflow_executor_logs.testing.kube_api import (
    TaskRef as TaskRef,
)
from airflow_executor_logs.testing.kube_api import (
    parse_label_selector as parse_label_selector,
)
from airflow_executor_logs.testing.kube_api import (
    serve_task_pod as serve_task_pod,
)
from airflow_executor_logs.testing.kube_api import (
    task_pod as task_pod,
)
from airflow_executor_logs.testing.kube_api import (
    task_pod_labels as task_pod_labels,
)
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
