"""Talking to the loopback Kubernetes API as production code does: the real ``kubernetes`` client, or raw HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from airflow_executor_logs_testing import FakeKubeAPI


def make_client(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient built exactly like production code builds one, without urllib3 retries."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    cfg.retries = False  # one request per call, so fault counts and timings are exact
    return client.ApiClient(cfg)


@pytest.fixture
def api_client(fake_kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A client of ``fake_kube_api`` through ``fake_kubeconfig``, closed after the test."""
    api_client = make_client(fake_kubeconfig)
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def v1(api_client: client.ApiClient) -> client.CoreV1Api:
    """The core/v1 API of :func:`api_client`."""
    return client.CoreV1Api(api_client)


def status_of(exc: ApiException) -> dict[str, Any]:
    """The Kubernetes Status body of a failed call."""
    body: dict[str, Any] = json.loads(exc.body)
    return body


def raw_get(api: FakeKubeAPI, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """GET ``path`` with plain ``http.client`` (optionally a bearer token); status and JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()
