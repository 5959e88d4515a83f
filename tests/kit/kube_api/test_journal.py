"""What ``FakeKubeAPI`` was asked (``kube_api.journal``): its requests, recorded as copies, and connections."""

from __future__ import annotations

from airflow_executor_logs_testing import FakeKubeAPI


def test_recorded_requests_are_copies_and_can_be_cleared() -> None:
    api = FakeKubeAPI()
    record = api._record("GET", "/api/v1/pods", {"labelSelector": "a=b"}, "list")
    api._set_status(record, 200)
    api._count_connection()
    copy = api.requests[0]
    copy.query["labelSelector"] = "changed"
    copy.status = 500
    (kept,) = api.recorded_requests()
    assert (kept.method, kept.path, kept.query, kept.route, kept.status) == (
        "GET",
        "/api/v1/pods",
        {"labelSelector": "a=b"},
        "list",
        200,
    )
    assert api.stats() == {"connections_opened": 1, "requests": 1, "pods": 0, "hanging": 0}
    api.clear_requests()
    assert (api.requests, api.connections_opened) == ([], 1)
