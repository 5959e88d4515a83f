"""The test kit of airflow-executor-logs: a real (loopback) Kubernetes API, a task's pod, pytest fixtures.

Import-light on purpose: nothing here imports Airflow or the ``kubernetes`` client (``task_pods`` imports the
provider when called). Installing the distribution registers the pytest fixtures (``pytest_plugin``) through
a ``pytest11`` entry point; ``-p no:airflow_executor_logs_testing.pytest_plugin`` turns them off.
"""

from __future__ import annotations

from airflow_executor_logs_testing import kube_api
from airflow_executor_logs_testing.kube_api import *  # noqa: F403 - re-exported, listed in kube_api.__all__
from airflow_executor_logs_testing.kube_process import FakeKubeProcess as FakeKubeProcess

__all__ = [*kube_api.__all__, "FakeKubeProcess"]  # kube_api's names and the process that serves them
