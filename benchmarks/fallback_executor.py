"""An executor with its own ``get_task_log`` and no class-level reader: the benchmark's fallback variant."""

from __future__ import annotations

from typing import Any

from airflow.configuration import conf
from airflow.executors.base_executor import BaseExecutor
from airflow.providers.cncf.kubernetes.kube_client import get_kube_client
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

#: How ``[core] executor`` and ``ti.executor`` name this executor.
PATH = f"{__name__}.PodLogExecutor"
CONTAINER = "base"
TAIL_LINES = 100


class PodLogExecutor(BaseExecutor):
    """
    Reads a running task's pod log itself, as a third-party executor would.

    It makes the same two Kubernetes calls as the provider (list the task's pod, read its tail) on a
    client it builds for the read. Nothing registers a class-level reader for it, so our package
    builds a short-lived instance for every read. Its imports are at module level, as the provider's
    executor module has them: the helper that forks each read's child preloads this module, so a read
    does not import the Kubernetes client again.
    """

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        client = get_kube_client()
        namespace = conf.get("kubernetes_executor", "namespace")
        selector = PodGenerator.build_selector_for_k8s_executor_pod(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            try_number=try_number,
            map_index=ti.map_index,
            run_id=ti.run_id,
            airflow_worker=ti.queued_by_job_id,
        )
        pods = client.list_namespaced_pod(namespace=namespace, label_selector=selector).items
        if len(pods) != 1:
            return [f"Expected one pod for {ti.task_id}, found {len(pods)}"], [""]
        response = client.read_namespaced_pod_log(
            name=pods[0].metadata.name,
            namespace=namespace,
            container=CONTAINER,
            tail_lines=TAIL_LINES,
            _preload_content=False,
        )
        try:
            lines = [line.decode().rstrip("\n") for line in response]
        finally:
            response.release_conn()
        return ["Found logs through kube API"], ["\n".join(lines)]

    def end(self) -> None:
        """Nothing was started, so nothing to stop."""
