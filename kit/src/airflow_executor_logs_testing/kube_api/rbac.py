"""What the loopback API's one user may do: RBAC denials per verb, resource and namespace, and their answers.

Everything is allowed until :meth:`AccessRules.deny` says otherwise. A denied request gets the real API
server's 403 ``Status`` body; a ``SelfSubjectAccessReview`` is answered from the same rules, as the real
``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` answers it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_executor_logs_testing.kube_api.faults import status_body

__all__ = ["USER", "AccessRules", "Denial", "forbidden_body"]

#: The user every valid token authenticates as (a service account, as an API server pod has).
USER = "system:serviceaccount:airflow:airflow-api-server"


@dataclass(frozen=True)
class Denial:
    """One denied permission; ``namespace`` ``None`` denies it in every namespace and cluster-wide."""

    verb: str
    resource: str
    namespace: str | None = None

    def covers(self, verb: str, resource: str, namespace: str | None) -> bool:
        if (self.verb, self.resource) != (verb, resource):
            return False
        return self.namespace is None or self.namespace == namespace


class AccessRules:
    """The denials in force; thread-safe."""

    def __init__(self) -> None:
        self._denials: set[Denial] = set()
        self._lock = threading.Lock()

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Deny ``verb`` on ``resource`` (``pods``, ``pods/log``) in ``namespace`` (``None``: everywhere)."""
        if not verb or not resource:
            raise ValueError("verb and resource must not be empty")
        with self._lock:
            self._denials.add(Denial(verb, resource, namespace or None))

    def allow_all(self) -> None:
        """Remove every denial."""
        with self._lock:
            self._denials.clear()

    def allowed(self, verb: str, resource: str, namespace: str | None) -> bool:
        """Whether the user may ``verb`` ``resource`` in ``namespace`` (``None``: at the cluster scope)."""
        with self._lock:
            return not any(denial.covers(verb, resource, namespace or None) for denial in self._denials)

    def review(self, body: Mapping[str, Any] | bytes) -> tuple[int, dict[str, Any]]:
        """The status and body answering a ``SelfSubjectAccessReview`` request ``body`` (parsed, or as sent)."""
        if isinstance(body, bytes):
            try:
                body = json.loads(body or b"{}")
            except ValueError:
                return 400, status_body(400, "the request body is not JSON")
        spec = body.get("spec") if isinstance(body, Mapping) else None
        attributes = spec.get("resourceAttributes") if isinstance(spec, Mapping) else None
        if not isinstance(attributes, Mapping):
            message = "SelfSubjectAccessReview.authorization.k8s.io is invalid: spec.resourceAttributes: Required"
            return 422, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "message": message}
        resource = str(attributes.get("resource") or "")
        if attributes.get("subresource"):
            resource += f"/{attributes['subresource']}"
        namespace = attributes.get("namespace") or None
        allowed = self.allowed(str(attributes.get("verb") or ""), resource, namespace)
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = f'RBAC: allowed by ClusterRoleBinding "fake-kube-api" of ClusterRole "fake" to {USER}'
        return 201, {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {"resourceAttributes": dict(attributes)},
            "status": status,
        }


def forbidden_body(verb: str, resource: str, namespace: str | None, name: str | None = None) -> dict[str, Any]:
    """The 403 ``Status`` the real API server sends when RBAC denies a request."""
    kind = resource.split("/", 1)[0]
    subject = f'{kind} "{name}"' if name else kind
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    details: dict[str, Any] = {"kind": kind} if not name else {"name": name, "kind": kind}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group "" {scope}',
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }
