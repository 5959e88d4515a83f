"""The pods ``FakeKubeAPI`` holds (``kube_api.pods``), and the body a pod's log request gets."""

from __future__ import annotations

import pytest

from airflow_executor_logs_testing import FakeKubeAPI, parse_label_selector
from airflow_executor_logs_testing.kube_api.pods import LogRefusal, log_body

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


# -- a log request's body ----------------------------------------------------------------------------------


def test_log_body_takes_the_tail_then_the_byte_limit() -> None:
    containers = {"base": ["one", "two", "three"]}
    assert log_body("p", containers, {}) == b"one\ntwo\nthree\n"
    assert log_body("p", containers, {"tailLines": "2"}) == b"two\nthree\n"
    assert log_body("p", containers, {"tailLines": "0"}) == b""
    assert log_body("p", containers, {"tailLines": "2", "limitBytes": "5"}) == b"two\nt"


def test_log_body_names_the_container_or_says_why_not() -> None:
    two = {"base": ["b"], "sidecar": ["s"]}
    assert log_body("p", two, {"container": "sidecar"}) == b"s\n"
    assert log_body("p", two, {}) == LogRefusal(
        "a container name must be specified for pod p, choose one of: [base sidecar]"
    )
    assert log_body("p", two, {"container": "x"}) == LogRefusal("container x is not valid for pod p")
    assert log_body("p", two, {"container": "base", "tailLines": "x"}) == LogRefusal(
        "tailLines and limitBytes must be integers"
    )
    assert log_body("p", two, {"container": "base", "limitBytes": "0"}) == LogRefusal(
        "tailLines must be >= 0 and limitBytes must be >= 1"
    )
