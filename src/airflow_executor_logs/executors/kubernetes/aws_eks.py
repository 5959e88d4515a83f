"""
The class-level reader for the amazon provider's ``AwsEksExecutor``: the Kubernetes reader, with the EKS client.

What the provider does (read in apache-airflow-providers-amazon 9.39.0, the first release with the
executor, on cncf-kubernetes 10.24.0 and 10.25.0):

* ``AwsEksExecutor`` (``airflow.providers.amazon.aws.executors.eks.eks_executor``) subclasses
  ``KubernetesExecutor`` and overrides ``__init__``, ``start`` and ``check_health`` only, plus private
  config checks. It overrides none of ``get_task_log``, ``get_streaming_task_log``,
  ``_get_pod_namespace``, ``RUNNING_POD_LOG_LINES`` or ``supports_task_instance_uuid``: pod selection,
  namespace, tail and messages are the Kubernetes executor's.
* It changes only the client. Its ``__init__`` (``_ensure_client_factory``) sets the environment variable
  of ``[kubernetes_executor] client_factory`` (and ``async_client_factory``), team-prefixed for a team,
  to its module's ``_CLIENT_FACTORY_PATH``
  (``airflow.providers.amazon.aws.executors.eks._client_factory._get_eks_kube_client``), and refuses a
  different configured factory. It requires cncf-kubernetes 10.24.0+, whose ``get_streaming_task_log``
  builds a client per read with ``kube_client._get_executor_kube_client(team_name)``: the team's
  ``client_factory`` (``conf.getimport``, no global fallback for a team) called with no argument, else
  ``get_kube_client()``. 10.25.0 keeps that seam and changes only how TCP keepalive is set.
* ``_get_eks_kube_client()`` reads the global ``[aws_eks_executor]`` ``cluster_name``, ``region_name`` and
  ``conn_id``, calls EKS ``DescribeCluster`` through ``EksHook`` (boto3), writes the cluster CA to a temp
  file, and signs an STS ``GetCallerIdentity`` URL locally into a ``k8s-aws-v1.`` bearer token, refreshed
  through the configuration's ``refresh_api_key_hook`` after 14 minutes.

Since this reader builds no executor, nothing sets that environment variable in the API server: it
calls the executor's own factory (its ``_CLIENT_FACTORY_PATH``) rather than the seam, which would build
the default kubeconfig client there. It changes no process-wide setting. Its client is cached like
the Kubernetes reader's (``[executor_logs] client_ttl``, rebuilt after a 401). ``DescribeCluster`` runs
under boto's own timeouts and retries, but on the client cache's build thread
(``executor-logs-kube-client``), which a read waits for only until its deadline; the pod-log calls (and a
token refresh they trigger) run on the fetch thread, also waited for only until the deadline. So this
reader keeps its deadline as the Kubernetes reader does, and the pipeline's guard
(``keeps_deadline=False``) is no longer needed: it is kept for now, and bounds nothing the reader
does not already bound.

It serves ``AwsEksExecutor`` and subclasses that override nothing of the read (:func:`reads_like_aws_eks`);
any other class, or a provider whose executor reads differently, gets the short-lived fallback.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from airflow_executor_logs.executors.kubernetes.client import KubeClientCache, KubeCoreApi, cap_retries
from airflow_executor_logs.executors.kubernetes.pod_log_fetch import Cluster
from airflow_executor_logs.executors.kubernetes.reader import KUBERNETES_EXECUTOR, KubernetesLogReader
from airflow_executor_logs.executors.reader_protocol import ReaderRegistration
from airflow_executor_logs.executors.reader_registry import class_path

__all__ = ["AWS_EKS_EXECUTOR", "REGISTRATION", "AwsEksLogReader", "build_eks_client", "reads_like_aws_eks"]

AWS_EKS_MODULE = "airflow.providers.amazon.aws.executors.eks.eks_executor"
AWS_EKS_EXECUTOR = f"{AWS_EKS_MODULE}.AwsEksExecutor"
#: The executor's section of its own settings (global only: it refuses team values).
EKS_SECTION = "aws_eks_executor"
#: Attributes through which a ``KubernetesExecutor`` subclass would read differently.
READ_ATTRIBUTES = (
    "get_task_log",
    "get_streaming_task_log",
    "_get_pod_namespace",
    "_create_log_stream",
    "RUNNING_POD_LOG_LINES",
    "supports_task_instance_uuid",
)
#: Where ``AwsEksExecutor`` chooses its client: a subclass that overrides these may choose another one.
CLIENT_ATTRIBUTES = ("__init__", "_ensure_client_factory")


@functools.lru_cache(maxsize=256)  # asked on every read of the class
def reads_like_aws_eks(executor_cls: type) -> bool:
    """
    Whether ``executor_cls`` is ``AwsEksExecutor`` (or a subclass) reading exactly as it does: nothing of
    :data:`READ_ATTRIBUTES` overridden below ``KubernetesExecutor``, nothing of :data:`CLIENT_ATTRIBUTES`
    below ``AwsEksExecutor``, and the executor's module names its client factory.
    """
    mro = executor_cls.__mro__
    paths = [class_path(klass) for klass in mro]
    if AWS_EKS_EXECUTOR not in paths or KUBERNETES_EXECUTOR not in paths:
        return False
    eks, kubernetes = paths.index(AWS_EKS_EXECUTOR), paths.index(KUBERNETES_EXECUTOR)
    if eks > kubernetes or not isinstance(_own_factory_path(mro[eks]), str):
        return False
    if any(attribute in vars(klass) for klass in mro[:kubernetes] for attribute in READ_ATTRIBUTES):
        return False
    return not any(attribute in vars(klass) for klass in mro[:eks] for attribute in CLIENT_ATTRIBUTES)


def _own_factory_path(eks_cls: type) -> Any:
    return getattr(importlib.import_module(eks_cls.__module__), "_CLIENT_FACTORY_PATH", None)


def build_eks_client(team_name: str | None) -> KubeCoreApi:
    """
    Build the client as ``AwsEksExecutor`` would have the seam build it: its own factory, called with no
    argument, after the check its ``__init__`` makes (a different configured ``client_factory`` is refused).
    Then cap its retries.
    """
    from airflow.configuration import conf

    own = getattr(importlib.import_module(AWS_EKS_MODULE), "_CLIENT_FACTORY_PATH", None)
    if not isinstance(own, str):
        raise RuntimeError(f"{AWS_EKS_MODULE} names no _CLIENT_FACTORY_PATH: this AwsEksExecutor is not known")
    team = {"team_name": team_name} if team_name else {}
    configured = conf.get("kubernetes_executor", "client_factory", fallback=None, **team)
    if configured and configured != own:
        raise ValueError(
            "AwsEksExecutor sets [kubernetes_executor] client_factory itself, so leave it unset; "
            f"it is set to {configured}"
        )
    module, _, name = own.rpartition(".")
    return cap_retries(getattr(importlib.import_module(module), name)())


class AwsEksLogReader(KubernetesLogReader):
    """The Kubernetes reader with clients from :func:`build_eks_client`; a cluster is an EKS cluster."""

    def __init__(self, clients: KubeClientCache | None = None, **kwargs: Any) -> None:
        super().__init__(clients or KubeClientCache(factory=build_eks_client), **kwargs)

    def cluster(self, team_name: str | None) -> Cluster:
        """The team, and the EKS cluster, region and AWS connection of ``[aws_eks_executor]``."""
        get = self.provider_settings.get

        def setting(key: str) -> str:
            return str(get(key, None, section=EKS_SECTION, fallback="") or "")

        return (team_name, f"eks:{setting('cluster_name')}", setting("region_name"), setting("conn_id"))


REGISTRATION = ReaderRegistration(
    executor=AWS_EKS_EXECUTOR,
    factory=AwsEksLogReader,
    include_subclasses=True,
    applies_to=reads_like_aws_eks,
    # No longer needed, kept for now: DescribeCluster runs on the client cache's build thread and the pod-log
    # calls on the fetch thread, both waited for only until the deadline, so the guard bounds nothing more.
    keeps_deadline=False,
)
