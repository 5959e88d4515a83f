"""``FakeKubeAPI`` itself (``kube_api.api``): its faults, token and kubeconfig, mostly unstarted.

Its pods are in ``test_pods.py``, its requests in ``test_journal.py``, the HTTP side in ``test_server.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_executor_logs_testing import FakeKubeAPI, Fault

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
