"""Test helpers shipped with the package: a real (fake) Kubernetes API server and pytest fixtures.

Import-light on purpose: nothing here imports Airflow or the ``kubernetes`` client, and names are loaded
on first use. The pytest fixtures are opt-in: ``pytest_plugins = ["airflow_executor_logs.testing.pytest_plugin"]``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_executor_logs.testing.kube_api import (
        FakeKubeAPI,
        Fault,
        FaultKind,
        LabelSelectorError,
        RecordedRequest,
        Requirement,
        Route,
        Selector,
        TaskRef,
        parse_label_selector,
        serve_task_pod,
        task_pod,
        task_pod_labels,
    )
    from airflow_executor_logs.testing.kube_process import FakeKubeProcess

_KUBE_API = "airflow_executor_logs.testing.kube_api"
_EXPORTS = {
    "FakeKubeAPI": _KUBE_API,
    "FakeKubeProcess": "airflow_executor_logs.testing.kube_process",
    "Fault": _KUBE_API,
    "FaultKind": _KUBE_API,
    "LabelSelectorError": _KUBE_API,
    "RecordedRequest": _KUBE_API,
    "Requirement": _KUBE_API,
    "Route": _KUBE_API,
    "Selector": _KUBE_API,
    "TaskRef": _KUBE_API,
    "parse_label_selector": _KUBE_API,
    "serve_task_pod": _KUBE_API,
    "task_pod": _KUBE_API,
    "task_pod_labels": _KUBE_API,
}

__all__ = [
    "FakeKubeAPI",
    "FakeKubeProcess",
    "Fault",
    "FaultKind",
    "LabelSelectorError",
    "RecordedRequest",
    "Requirement",
    "Route",
    "Selector",
    "TaskRef",
    "parse_label_selector",
    "serve_task_pod",
    "task_pod",
    "task_pod_labels",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
