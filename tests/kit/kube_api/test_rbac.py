"""RBAC on the loopback API: denials with the real 403 body, and SelfSubjectAccessReview, for the real client."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from airflow_executor_logs_testing import FakeKubeAPI, Fault
from airflow_executor_logs_testing.kube_api.rbac import USER, AccessRules, forbidden_body
from airflow_executor_logs_testing.kube_process import FakeKubeProcess
from tests.support.kube_http import api_client, make_client, status_of, v1

__all__ = ["api_client", "v1"]  # fixtures


def _review(api: client.ApiClient, verb: str, resource: str, namespace: str, subresource: str = "") -> bool:
    attributes = client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace, subresource=subresource)
    body = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    answer = client.AuthorizationV1Api(api).create_self_subject_access_review(body)
    return bool(answer.status.allowed)


def test_everything_is_allowed_until_denied(fake_kube_api: FakeKubeAPI, api_client: client.ApiClient) -> None:
    fake_kube_api.add_pod("p", namespace="team-a", logs=["x"])
    v1 = client.CoreV1Api(api_client)
    assert [pod.metadata.name for pod in v1.list_namespaced_pod("team-a").items] == ["p"]
    assert _review(api_client, "list", "pods", "team-a")
    assert _review(api_client, "get", "pods", "team-a", subresource="log")
    assert client.VersionApi(api_client).get_code().git_version == "v1.31.0-fake"


def test_denied_in_one_namespace_only(fake_kube_api: FakeKubeAPI, api_client: client.ApiClient) -> None:
    fake_kube_api.add_pod("p", namespace="team-a", logs=["x"])
    fake_kube_api.add_pod("q", namespace="team-b", logs=["y"])
    fake_kube_api.deny("list", "pods", namespace="team-b")
    fake_kube_api.deny("get", "pods/log", namespace="team-b")
    v1 = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as listed:
        v1.list_namespaced_pod("team-b")
    assert listed.value.status == 403
    assert status_of(listed.value) == forbidden_body("list", "pods", "team-b")
    assert status_of(listed.value)["message"] == (
        f'pods is forbidden: User "{USER}" cannot list resource "pods" in API group "" in the namespace "team-b"'
    )
    with pytest.raises(ApiException) as logged:
        v1.read_namespaced_pod_log("q", "team-b")
    assert status_of(logged.value)["message"].startswith('pods "q" is forbidden:')
    assert status_of(logged.value)["details"] == {"name": "q", "kind": "pods"}
    assert v1.read_namespaced_pod_log("p", "team-a", _preload_content=False).read() == b"x\n"
    assert not _review(api_client, "list", "pods", "team-b")
    assert not _review(api_client, "get", "pods", "team-b", subresource="log")
    assert _review(api_client, "list", "pods", "team-a")
    assert [r.status for r in fake_kube_api.requests if r.route == "review"] == [201] * 3
    fake_kube_api.allow_all()
    assert [pod.metadata.name for pod in v1.list_namespaced_pod("team-b").items] == ["q"]


def test_denied_everywhere_covers_the_cluster_scope(fake_kube_api: FakeKubeAPI, api_client: client.ApiClient) -> None:
    fake_kube_api.deny("list", "pods")
    with pytest.raises(ApiException) as listed:
        client.CoreV1Api(api_client).list_pod_for_all_namespaces()
    assert status_of(listed.value)["message"].endswith('in API group "" at the cluster scope')
    assert not _review(api_client, "list", "pods", "")
    assert not _review(api_client, "list", "pods", "any")


def test_faults_reach_the_new_routes(fake_kube_api: FakeKubeAPI, api_client: client.ApiClient) -> None:
    fake_kube_api.inject("version", Fault.status(503), times=1)
    fake_kube_api.inject("review", Fault.status(500), times=1)
    with pytest.raises(ApiException) as version:
        client.VersionApi(api_client).get_code()
    assert version.value.status == 503
    with pytest.raises(ApiException) as review:
        _review(api_client, "list", "pods", "default")
    assert review.value.status == 500


def test_review_needs_resource_attributes() -> None:
    code, body = AccessRules().review({"spec": {}})
    assert code == 422
    assert body["code"] == 422
    with pytest.raises(ValueError, match="must not be empty"):
        AccessRules().deny("", "pods")


def test_denials_through_the_admin_api(tmp_path: Path) -> None:
    process = FakeKubeProcess(tmp_path / "kubeconfig")
    try:
        process.start()
        process.deny("get", "pods/log", namespace="team-b")
        api = make_client(process.kubeconfig)
        try:
            assert not _review(api, "get", "pods", "team-b", subresource="log")
            process.allow_all()
            assert _review(api, "get", "pods", "team-b", subresource="log")
        finally:
            api.close()
    finally:
        process.stop()
