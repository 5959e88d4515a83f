"""The admin API (``kube_api.admin``): one declaration, used by the server and by remote clients."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest

from airflow_executor_logs_testing import FakeKubeAPI, FakeKubeProcess, Fault, RecordedRequest
from airflow_executor_logs_testing.kube_api.admin import ADMIN_METHODS, call_remote, decode, dispatch, encode, remote


class Recorder:
    """An admin client that records calls instead of sending them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def admin_call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append((name, arguments))
        return None

    add_pod = remote(FakeKubeAPI.add_pod)
    inject = remote(FakeKubeAPI.inject)


def test_the_process_client_exposes_every_admin_method_with_the_api_signature() -> None:
    remotes = {name: attr for name, attr in vars(FakeKubeProcess).items() if isinstance(attr, remote)}
    assert {attr.name for attr in remotes.values()} == ADMIN_METHODS
    for attr in remotes.values():
        method = getattr(FakeKubeAPI, attr.name)
        assert attr.signature == inspect.signature(method)
        assert attr.__doc__ == method.__doc__


def test_remote_sends_the_bound_keyword_arguments_and_checks_them_first() -> None:
    client = Recorder()
    client.add_pod("p", labels={"a": "b"})
    client.inject("log", Fault.delay(1), times=2)
    assert client.calls == [
        ("add_pod", {"name": "p", "labels": {"a": "b"}}),
        ("inject", {"route": "log", "fault": Fault.delay(1), "times": 2}),
    ]
    with pytest.raises(TypeError):
        client.add_pod("p", "not-a-keyword")  # type: ignore[misc]
    assert len(client.calls) == 2  # refused before anything was sent


def test_encode_and_decode_round_trip_faults_and_requests() -> None:
    request = RecordedRequest("GET", "/api/v1/pods", {"a": "b"}, "list", 1.5, 200)
    value = {"fault": Fault.reset_mid_stream(7), "requests": [request], "labels": {"k": "v"}}
    wire = json.loads(json.dumps(encode(value)))
    assert decode(wire) == value


@pytest.mark.parametrize(
    ("http_method", "name", "body", "code", "message"),
    [
        ("POST", "shutdown", b"", 404, "no admin method 'shutdown'"),
        ("GET", "stats", b"", 405, "admin method 'stats' takes POST, not GET"),
        ("POST", "add_pod", b"{not json", 400, "Expecting property name"),
        ("POST", "add_pod", b"[1]", 400, "the body must be a JSON object of keyword arguments"),
        ("POST", "add_pod", b'{"nmae": "p"}', 400, "unexpected keyword argument 'nmae'"),
        ("POST", "remove_pod", b'{"name": "missing"}', 404, "not found: ('default', 'missing')"),
        ("POST", "inject", b'{"route": "nowhere", "fault": {"__fault__": {"kind": "hang"}}}', 400, "route must be"),
    ],
)
def test_dispatch_refuses_bad_calls_with_a_status(
    http_method: str, name: str, body: bytes, code: int, message: str
) -> None:
    status, payload = dispatch(FakeKubeAPI(), http_method, name, body)
    assert (status, payload["kind"], payload["code"]) == (code, "Status", code)
    assert message in payload["message"]


def test_calls_over_http_reach_the_api(fake_kube_api: FakeKubeAPI) -> None:
    call_remote(fake_kube_api.url, "add_pod", {"name": "p", "logs": ["x"]})
    call_remote(fake_kube_api.url, "inject", {"route": "log", "fault": Fault.status(503), "times": 1})
    assert call_remote(fake_kube_api.url, "stats", {}) == {
        "connections_opened": 0,
        "requests": 0,
        "pods": 1,
        "hanging": 0,
    }
    assert call_remote(fake_kube_api.url, "recorded_requests", {}) == []
    with pytest.raises(RuntimeError, match=r"^remove_pod failed with 404: .*not found"):
        call_remote(fake_kube_api.url, "remove_pod", {"name": "nope"})
