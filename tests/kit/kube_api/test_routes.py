"""The fake Kubernetes API's routes (``kube_api.routes``): which path is which route, with what in it."""

from __future__ import annotations

import pytest

from airflow_executor_logs_testing.kube_api.routes import METHODS, PERMISSIONS, resolve


@pytest.mark.parametrize(
    ("path", "route", "params"),
    [
        ("/api/v1/pods", "list", {}),
        ("/api/v1/namespaces/ns/pods", "list", {"namespace": "ns"}),
        ("/api/v1/namespaces/ns/pods/p", "get", {"namespace": "ns", "name": "p"}),
        ("/api/v1/namespaces/ns/pods/p/log", "log", {"namespace": "ns", "name": "p"}),
        ("/api/v1/namespaces/n%2Fs/pods/p%20q/log", "log", {"namespace": "n/s", "name": "p q"}),
        ("/api/v1/namespaces/ns/pods/p/exec", "other", {}),
        ("/api/v1/pods/", "other", {}),
        ("/apis/apps/v1/deployments", "other", {}),
    ],
)
def test_paths_resolve_to_routes(path: str, route: str, params: dict[str, str]) -> None:
    assert resolve(path) == (route, params)


def test_every_pod_route_has_its_rbac_permission_and_the_review_is_posted() -> None:
    assert PERMISSIONS == {"list": ("list", "pods"), "get": ("get", "pods"), "log": ("get", "pods/log")}
    assert METHODS == {"review": "POST"}
