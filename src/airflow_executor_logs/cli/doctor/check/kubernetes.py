"""
The Kubernetes check, per cluster configuration (a team's, or the global one): the client the log view's
reader uses builds within the read deadline, the API answers ``/version``, and the service account may
``list pods`` and ``get pods/log`` in every namespace the executor uses (asked with a SelfSubjectAccessReview).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_executor_logs.cli.doctor.check.executors import ExecutorPlan
from airflow_executor_logs.cli.doctor.check.results import FAIL, OK, CheckResult
from airflow_executor_logs.cli.doctor.check.running import RunningTask
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.resilience.deadline import Deadline

__all__ = ["PERMISSIONS", "Cluster", "check_cluster", "clusters", "rbac_rule"]

#: ``(verb, resource, subresource)`` the reader needs in each namespace.
PERMISSIONS = (("list", "pods", ""), ("get", "pods", "log"))
#: The namespace of a cluster-wide permission (multi-namespace mode without a namespace list).
CLUSTER_WIDE = ""


@dataclass
class Cluster:
    """One cluster configuration: a team's Kubernetes reader, the executors it serves and their namespaces."""

    team_name: str | None
    reader: Any
    executors: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"team {self.team_name}" if self.team_name else "default"


def clusters(
    plans: Sequence[ExecutorPlan], running: Sequence[RunningTask], resolve: Callable[[Any], Any]
) -> list[Cluster]:
    """
    The clusters the planned Kubernetes readers read from, with every namespace their tasks may run in
    (``resolve(ti)``: the task's resolved executor, ``None`` if it has none).
    """
    try:
        from airflow_executor_logs.executors.kubernetes.reader import KubernetesLogReader
    except Exception:
        return []
    found: dict[tuple[int, str | None], Cluster] = {}
    for plan in plans:
        reader = None if plan.path is None or plan.path.reader is None else plan.path.reader.read
        if plan.executor is None or not isinstance(reader, KubernetesLogReader):
            continue
        team = plan.executor.team_name
        cluster = found.setdefault((id(reader), team), Cluster(team, reader))
        cluster.executors.append(plan.executor.executor_cls.__name__)
        tis = [task.ti for task in running if _same(resolve(task.ti), plan.executor)]
        for namespace in _namespaces(reader.provider_settings, team, tis):
            if namespace not in cluster.namespaces:
                cluster.namespaces.append(namespace)
    return list(found.values())


def _same(resolved: Any, executor: Any) -> bool:
    return resolved is not None and (resolved.executor_cls, resolved.team_name) == (
        executor.executor_cls,
        executor.team_name,
    )


def _namespaces(provider_settings: Any, team: str | None, tis: Sequence[Any]) -> list[str]:
    """``namespace``, the multi-namespace mode's list (or cluster-wide), and the pod overrides' namespaces."""
    namespaces = [str(provider_settings.get("namespace", team))]
    multi = str(provider_settings.get("multi_namespace_mode", team, fallback="False")).strip().lower() == "true"
    if multi:
        listed = str(provider_settings.get("multi_namespace_mode_namespace_list", team, fallback="") or "")
        namespaces += [name.strip() for name in listed.split(",") if name.strip()] or [CLUSTER_WIDE]
    for ti in tis:
        try:
            namespaces.append(str(provider_settings.namespace(ti, team)))
        except Exception:
            continue
    return list(dict.fromkeys(namespaces))


def rbac_rule(missing: Sequence[tuple[str, str]]) -> str:
    """The RBAC rules to add, for ``(namespace, "verb resource")`` pairs the service account lacks."""
    by_namespace: dict[str, list[str]] = {}
    for namespace, permission in missing:
        by_namespace.setdefault(namespace, []).append(permission)
    parts = []
    for namespace, permissions in by_namespace.items():
        rules = ", ".join(
            f'{{apiGroups: [""], resources: ["{p.split()[1]}"], verbs: ["{p.split()[0]}"]}}' for p in permissions
        )
        where = (
            "a ClusterRole (ClusterRoleBinding)" if namespace == CLUSTER_WIDE else f'a Role in namespace "{namespace}"'
        )
        parts.append(f"add to {where} bound to the API server's service account: rules: [{rules}]")
    return "; ".join(parts)


def check_cluster(cluster: Cluster, settings: Settings) -> CheckResult:
    """Build the client, ask ``/version``, then review each permission, all within one read deadline."""
    deadline = Deadline(settings.read_timeout)
    details: dict[str, Any] = {
        "team": cluster.team_name,
        "executors": cluster.executors,
        "namespaces": cluster.namespaces,
    }
    try:
        api = cluster.reader.clients.get(cluster.team_name, settings.client_ttl, deadline)
    except Exception as err:
        fix = (
            "make the kubeconfig's credentials answer at once (its exec plugin, e.g. aws eks get-token) or "
            "check [kubernetes_executor] config_file, cluster_context and in_cluster"
        )
        reason = str(err) if isinstance(err, TimeoutError) else f"the client was not built: {type(err).__name__}: {err}"
        return _fail(cluster, reason, fix, details)
    api_client = api.api_client
    host = str(getattr(api_client.configuration, "host", "?"))
    details["host"] = host
    from kubernetes import client

    try:
        version = client.VersionApi(api_client).get_code(
            _request_timeout=deadline.request_timeouts(settings.connect_timeout)
        )
    except Exception as err:
        fix = f"let the API server's pods reach {host} (network policy, proxy, DNS) and check the cluster is up"
        return _fail(
            cluster,
            f"the Kubernetes API at {host} does not answer /version: {_describe(err, api, settings)}",
            fix,
            details,
        )
    details["version"] = version.git_version
    authorization = client.AuthorizationV1Api(api_client)
    missing: list[tuple[str, str]] = []
    for namespace in cluster.namespaces:
        for verb, resource, subresource in PERMISSIONS:
            attributes = client.V1ResourceAttributes(
                verb=verb, resource=resource, subresource=subresource or None, namespace=namespace or None
            )
            review = client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
            )
            try:
                answer = authorization.create_self_subject_access_review(
                    review, _request_timeout=deadline.request_timeouts(settings.connect_timeout)
                )
            except Exception as err:
                fix = f"let the API server's pods reach {host} (SelfSubjectAccessReview is allowed to everyone)"
                return _fail(
                    cluster, f"the access review at {host} failed: {_describe(err, api, settings)}", fix, details
                )
            if not answer.status.allowed:
                missing.append((namespace, f"{verb} {resource}/{subresource}" if subresource else f"{verb} {resource}"))
    details["denied"] = [{"namespace": ns, "permission": p} for ns, p in missing]
    if missing:
        denied = ", ".join(f"{p} in {_where(ns)}" for ns, p in missing)
        return _fail(cluster, f"the service account may not {denied}", rbac_rule(missing), details)
    named = [ns for ns in cluster.namespaces if ns != CLUSTER_WIDE]
    where = ("every namespace" if CLUSTER_WIDE in cluster.namespaces else "") or (
        f"namespace {named[0]}" if len(named) == 1 else f"namespaces {', '.join(named)}"
    )
    summary = f"{host} answers ({version.git_version}); may list pods and get pods/log in {where}"
    return CheckResult("kubernetes", cluster.subject, OK, summary, None, details)


def _where(namespace: str) -> str:
    return "every namespace" if namespace == CLUSTER_WIDE else f"namespace {namespace}"


def _fail(cluster: Cluster, summary: str, fix: str, details: dict[str, Any]) -> CheckResult:
    return CheckResult("kubernetes", cluster.subject, FAIL, summary, fix, details)


def _describe(err: BaseException, api: Any, settings: Settings) -> str:
    from airflow_executor_logs.executors.kubernetes.transport import describe, is_timeout

    if is_timeout(err):
        return f"no answer within {settings.read_timeout:g} s (connect_timeout {settings.connect_timeout:g} s)"
    return str(describe(err, api))
