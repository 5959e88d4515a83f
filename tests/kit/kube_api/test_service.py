"""``kube_api.service``: a loopback service's URL is 127.0.0.1 and its bound port."""

from __future__ import annotations

import pytest

from airflow_executor_logs_testing import FakeKubeAPI
from airflow_executor_logs_testing.kube_api.service import LoopbackService


def test_the_url_is_loopback_and_the_bound_port() -> None:
    with FakeKubeAPI() as api:
        assert isinstance(api, LoopbackService)
        assert api.url == f"http://127.0.0.1:{api.port}"


def test_a_service_without_a_port_says_so() -> None:
    with pytest.raises(NotImplementedError):
        _ = LoopbackService().url
