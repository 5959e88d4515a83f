"""``FakeKubeAPI`` itself (``kube_api.api``): its pods, faults, records, token and kubeconfig, mostly unstarted.

What the HTTP side makes of this state is in ``test_server.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_executor_logs_testing import FakeKubeAPI, Fault, parse_label_selector

EVERYTHING = parse_label_selector("")


def _names(api: FakeKubeAPI, namespace: str | None = None, selector: str = "") -> list[tuple[str, str]]:
    listed = api._pod_list(namespace, parse_label_selector(selector))["items"]
    return [(pod["metadata"]["namespace"], pod["metadata"]["name"]) for pod in listed]


def _version(api: FakeKubeAPI) -> int:
    return int(api._pod_list(None, EVERYTHING)["metadata"]["resourceVersion"])


# -- pods --------------------------------------------------------------------------------------------------


def test_add_pod_takes_lines_for_base_or_per_container_and_stringifies() -> None:
    api = FakeKubeAPI()
    api.add_pod("none")
    api.add_pod("plain", logs=["a", 2])  # type: ignore[list-item]
    api.add_pod("multi", namespace="ns", labels={"n": 1}, logs={"main": ["m"], "side": []}, phase="Pending")  # type: ignore[dict-item]
    assert api._pod_logs("default", "none") == {"base": []}
    assert api._pod_logs("default", "plain") == {"base": ["a", "2"]}
    assert api._pod_logs("ns", "multi") == {"main": ["m"], "side": []}
    pod = api._pod_json("ns", "multi")
    assert pod is not None
    assert (pod["kind"], pod["metadata"]["labels"], pod["status"]["phase"]) == ("Pod", {"n": "1"}, "Pending")
    assert pod["spec"]["containers"] == [
        {"name": "main", "image": "fake.invalid/main:latest"},
        {"name": "side", "image": "fake.invalid/side:latest"},
    ]
    assert api._pod_json("default", "ns") is None
    assert api._pod_logs("other", "plain") is None


def test_add_pod_refuses_one_string_and_no_container() -> None:
    api = FakeKubeAPI()
    with pytest.raises(TypeError, match="logs must be a list of lines"):
        api.add_pod("p", logs="one line")
    with pytest.raises(ValueError, match="at least one container"):
        api.add_pod("p", logs={})
    assert api.stats()["pods"] == 0


def test_pods_are_listed_by_namespace_and_selector_sorted_and_replaced_by_name() -> None:
    api = FakeKubeAPI()
    api.add_pod("b", labels={"app": "web"})
    api.add_pod("a", labels={"app": "db"})
    api.add_pod("c", namespace="aa", labels={"app": "web"})
    api.add_pod("b", labels={"app": "db"}, logs=["replaced"])
    assert _names(api) == [("aa", "c"), ("default", "a"), ("default", "b")]
    assert _names(api, "default") == [("default", "a"), ("default", "b")]
    assert _names(api, None, "app=web") == [("aa", "c")]
    assert api._pod_logs("default", "b") == {"base": ["replaced"]}
    assert api.stats() == {"connections_opened": 0, "requests": 0, "pods": 3, "hanging": 0}


def test_every_change_to_the_pods_bumps_the_resource_version() -> None:
    api = FakeKubeAPI()
    versions = [_version(api)]
    api.add_pod("p")
    versions.append(_version(api))
    api.remove_pod("p")
    versions.append(_version(api))
    api.clear_pods()
    versions.append(_version(api))
    assert versions == [1, 2, 3, 4]


def test_append_remove_and_clear() -> None:
    api = FakeKubeAPI()
    api.add_pod("p", logs={"base": ["one"], "side": []})
    api.append_logs("p", ["two", 3])  # type: ignore[list-item]
    api.append_logs("p", ["s"], container="side")
    assert api._pod_logs("default", "p") == {"base": ["one", "two", "3"], "side": ["s"]}
    with pytest.raises(KeyError):
        api.append_logs("missing", ["x"])
    with pytest.raises(KeyError):
        api.append_logs("p", ["x"], container="missing")
    with pytest.raises(KeyError):
        api.remove_pod("p", "other-namespace")
    api.remove_pod("p")
    assert _names(api) == []
    api.add_pod("q")
    api.add_pod("r", namespace="ns")
    api.clear_pods()
    assert _names(api) == []


# -- faults ------------------------------------------------------------------------------------------------


def test_inject_validates_route_and_times() -> None:
    api = FakeKubeAPI()
    with pytest.raises(ValueError, match="route must be one of"):
        api.inject("logs", Fault.hang())
    with pytest.raises(ValueError, match="times must be >= 1"):
        api.inject("log", Fault.hang(), times=0)
    assert api._take_fault("log") is None  # nothing was kept


def test_the_oldest_matching_injection_wins_and_counts_down() -> None:
    api = FakeKubeAPI()
    api.inject("log", Fault.status(500), times=2)
    api.inject("*", Fault.delay(1))  # every route, forever
    api.inject("list", Fault.hang(), times=1)
    taken = [api._take_fault(route) for route in ("log", "list", "log", "log", "get", "list")]
    assert taken == [
        Fault.status(500),
        Fault.delay(1),
        Fault.status(500),
        Fault.delay(1),
        Fault.delay(1),
        Fault.delay(1),
    ]
    api.clear_faults()
    assert [api._take_fault(route) for route in ("list", "get", "log")] == [None, None, None]


# -- requests, connections, auth ---------------------------------------------------------------------------


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


def test_only_the_current_bearer_token_is_authorized() -> None:
    api = FakeKubeAPI(token="first")
    assert [api._authorized(h) for h in ("Bearer first", "Bearer firs", "bearer first", "first", None)] == [
        True,
        False,
        False,
        False,
        False,
    ]
    api.set_token("second")
    assert (api.token, api._authorized("Bearer first"), api._authorized("Bearer second")) == ("second", False, True)
    with pytest.raises(ValueError, match="must not be empty"):
        api.set_token("")
    with pytest.raises(ValueError, match="no kubeconfig was written"):
        api.set_token("third", rewrite_kubeconfig=True)
    assert len(FakeKubeAPI().token) == 32  # a random one: 24 bytes, URL-safe base64


def test_a_token_check_also_accepts_the_tokens_it_accepts() -> None:
    api = FakeKubeAPI(token="fixed")
    seen: list[str] = []

    def check(token: str) -> bool:
        seen.append(token)
        return token.startswith("minted.")

    api.accept_tokens(check)
    headers = ("Bearer minted.1", "Bearer other", "minted.1", "Bearer fixed", None)
    assert [api._authorized(h) for h in headers] == [True, False, False, True, False]
    assert seen == ["minted.1", "other"]  # the fixed token is compared first; a header without "Bearer " is not
    api.accept_tokens(None)
    assert not api._authorized("Bearer minted.1")


# -- kubeconfig --------------------------------------------------------------------------------------------


def test_kubeconfig_extra_user_fields(fake_kube_api: FakeKubeAPI, tmp_path: Path) -> None:
    path = fake_kube_api.write_kubeconfig(tmp_path / "sub" / "config", {"client-certificate-data": "Zm9v"})
    loaded = yaml.safe_load(path.read_text())
    assert loaded["current-context"] == "fake-kube-api"
    assert loaded["clusters"][0]["cluster"]["server"] == fake_kube_api.url
    assert loaded["users"][0]["user"] == {"token": fake_kube_api.token, "client-certificate-data": "Zm9v"}


def test_a_rotated_token_rewrites_the_last_kubeconfig_with_its_options(
    fake_kube_api: FakeKubeAPI, tmp_path: Path
) -> None:
    path = fake_kube_api.write_kubeconfig(tmp_path / "config", {"x": "y"}, namespace="team-ns")
    fake_kube_api.set_token("rotated", rewrite_kubeconfig=True)
    loaded = yaml.safe_load(path.read_text())
    assert loaded["users"][0]["user"] == {"token": "rotated", "x": "y"}
    assert loaded["contexts"][0]["context"] == {
        "cluster": "fake-kube-api",
        "user": "fake-kube-user",
        "namespace": "team-ns",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]  # written atomically: no temporary file left


# -- lifecycle ---------------------------------------------------------------------------------------------


def test_port_needs_a_start_and_a_stopped_api_cannot_restart() -> None:
    api = FakeKubeAPI()
    with pytest.raises(RuntimeError, match="not started"):
        _ = api.port
    assert api.open_connections == 0
    api.stop()  # never started: nothing to stop
    api.stop()
    with pytest.raises(RuntimeError, match="cannot be restarted"):
        api.start()


def test_start_is_idempotent_and_stop_frees_the_port() -> None:
    with FakeKubeAPI() as api:
        port = api.port
        assert api.start() is api
        assert (api.port, api.url) == (port, f"http://127.0.0.1:{port}")
    with pytest.raises(RuntimeError, match="cannot be restarted"):
        api.start()
    with FakeKubeAPI(port=port) as again:  # the port was released
        assert again.port == port
