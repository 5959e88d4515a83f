"""A small, real Kubernetes API server for tests, driven by the real ``kubernetes`` client.

:class:`FakeKubeAPI` serves the handful of core/v1 pod routes that log readers use (list pods with a
label selector, read one pod, read a pod's log), ``/version`` and ``SelfSubjectAccessReview`` over plain
HTTP/1.1 on 127.0.0.1, checks a bearer token, applies RBAC denials (:meth:`FakeKubeAPI.deny`),
records every request and can inject faults (delays, slow streams, hangs, error statuses, broken JSON,
connection resets). ``python -m airflow_executor_logs_testing.kube_api --kubeconfig PATH`` serves it from
its own process (see :class:`~airflow_executor_logs_testing.kube_process.FakeKubeProcess`).

Modules: ``selectors`` (label selectors), ``faults`` (faults, recorded requests, error bodies), ``rbac``
(denials, access reviews, 403 bodies), ``pods`` (the pods held, a log request's body), ``journal`` (the
requests received), ``routes`` (paths, methods, permissions), ``server`` (HTTP), ``service`` (start, stop,
URL), ``api`` (:class:`FakeKubeAPI`), ``admin`` (the loopback admin API), ``cli``, and ``task_pods`` (a
task's pod, labelled as the installed provider labels it).
"""

from __future__ import annotations

from airflow_executor_logs_testing.kube_api.api import FakeKubeAPI
from airflow_executor_logs_testing.kube_api.faults import Fault, FaultKind, RecordedRequest, Route
from airflow_executor_logs_testing.kube_api.selectors import (
    LabelSelectorError,
    Requirement,
    Selector,
    parse_label_selector,
)
from airflow_executor_logs_testing.kube_api.task_pods import TaskRef, serve_task_pod, task_pod, task_pod_labels

__all__ = [
    "FakeKubeAPI",
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
