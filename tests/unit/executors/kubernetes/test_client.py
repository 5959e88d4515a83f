"""One Kubernetes client per team, reused until its TTL or until a 401 drops it; built with retries capped."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.executors.kubernetes.client import KubeClientCache, build_client
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.metrics import RecordingMetrics
from airflow_executor_logs_testing.kube_client import FakeClock


class CountingCache(KubeClientCache):
    """The cache as a read uses it: each build counted through the metrics sink (``builds``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = RecordingMetrics()

    def get(self, team_name: str | None, ttl: float, deadline: Deadline | None = None, **_: Any) -> Any:
        return super().get(team_name, ttl, deadline, built=lambda: self.metrics.incr(metrics.CLIENT_BUILDS, None))

    @property
    def builds(self) -> int:
        return self.metrics.count(metrics.CLIENT_BUILDS)


class Built:
    """A stand-in client that says which team it was built for, and when."""

    def __init__(self, team_name: str | None, number: int) -> None:
        self.team_name, self.number = team_name, number

    def __repr__(self) -> str:
        return f"Built({self.team_name!r}, {self.number})"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def built() -> list[Built]:
    return []


@pytest.fixture
def cache(clock: FakeClock, built: list[Built]) -> CountingCache:
    def factory(team_name: str | None) -> Built:
        client = Built(team_name, len(built))
        built.append(client)
        return client

    return CountingCache(factory=factory, clock=clock)


def test_a_client_is_reused_until_its_ttl_then_rebuilt(cache: CountingCache, clock: FakeClock) -> None:
    first = cache.get(None, ttl=60.0)
    clock.advance(59.9)
    assert cache.get(None, ttl=60.0) is first
    clock.advance(0.1)  # exactly the TTL: too old
    second = cache.get(None, ttl=60.0)
    assert (first.number, second.number, cache.builds) == (0, 1, 2)
    clock.advance(59.9)  # the TTL counts from the rebuild
    assert cache.get(None, ttl=60.0) is second


def test_a_shorter_ttl_applies_to_a_client_already_cached(cache: CountingCache, clock: FakeClock) -> None:
    first = cache.get(None, ttl=600.0)
    clock.advance(10.0)
    assert cache.get(None, ttl=10.0) is not first  # the setting changed: the client is already too old
    assert cache.builds == 2


def test_each_team_has_its_own_client(cache: CountingCache, built: list[Built]) -> None:
    default, team_a = cache.get(None, 60.0), cache.get("team_a", 60.0)
    assert (cache.get(None, 60.0), cache.get("team_a", 60.0)) == (default, team_a)
    assert [(client.team_name, client.number) for client in built] == [(None, 0), ("team_a", 1)]


def test_invalidate_drops_only_the_client_it_names(cache: CountingCache, clock: FakeClock) -> None:
    stale = cache.get(None, 60.0)
    cache.invalidate(None, stale)
    fresh = cache.get(None, 60.0)
    assert fresh is not stale
    cache.invalidate(None, stale)  # a second read that saw the same 401 late: the fresh client stays
    assert cache.get(None, 60.0) is fresh
    cache.invalidate("team_a", fresh)  # another team's key: nothing to drop
    assert cache.get(None, 60.0) is fresh
    assert cache.builds == 2


def _real_client() -> Any:
    from kubernetes.client import ApiClient, Configuration, CoreV1Api

    return CoreV1Api(ApiClient(Configuration()))


def test_build_client_asks_the_team_aware_provider_and_caps_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.cncf.kubernetes import kube_client

    teams: list[str | None] = []

    def team_aware(team_name: str | None = None) -> Any:
        teams.append(team_name)
        return _real_client()

    monkeypatch.setattr(kube_client, "_get_executor_kube_client", team_aware, raising=False)
    monkeypatch.setattr(kube_client, "get_kube_client", lambda: pytest.fail("the team-unaware client was built"))
    api = build_client("team_a")
    assert teams == ["team_a"]
    retries = api.api_client.rest_client.pool_manager.connection_pool_kw["retries"]
    assert (retries.total, retries.connect, retries.read, retries.status, retries.other, retries.redirect) == (
        1,
        1,
        0,
        0,
        0,
        0,
    )
    assert retries.backoff_factor == 0


def test_build_client_without_teams_uses_the_providers_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.cncf.kubernetes import kube_client

    monkeypatch.delattr(kube_client, "_get_executor_kube_client", raising=False)  # providers before teams
    client = _real_client()
    monkeypatch.setattr(kube_client, "get_kube_client", lambda: client)
    assert build_client(None) is client
    assert client.api_client.rest_client.pool_manager.connection_pool_kw["retries"].total == 1


def test_the_real_client_and_the_double_both_have_the_calls_the_reader_makes() -> None:
    """mypy checks the double against ``KubeCoreApi``; the real client is untyped, so it is checked here."""
    import inspect

    from kubernetes.client import ApiClient, Configuration, CoreV1Api

    from airflow_executor_logs.executors.kubernetes.client import KubeCoreApi
    from airflow_executor_logs_testing.kube_client import KubeClientDouble

    real = CoreV1Api(ApiClient(Configuration()))
    assert isinstance(real, KubeCoreApi)
    assert isinstance(KubeClientDouble(), KubeCoreApi)
    for name in ("list_namespaced_pod", "read_namespaced_pod_log"):
        protocol = inspect.signature(getattr(KubeCoreApi, name)).parameters
        positional = [p for p in protocol.values() if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
        real_parameters = inspect.signature(getattr(real, name)).parameters
        assert [p.name for p in positional] == list(real_parameters)[: len(positional)]


# ------------------------------------------------------------------ a build that hangs (a kubeconfig exec plugin)


class _HangingFactory:
    """Builds hang for the teams in ``hang`` until released; the rest return at once."""

    def __init__(self, *hang: str | None) -> None:
        import threading

        self.hang = set(hang)
        self.release = threading.Event()
        self.calls: list[str | None] = []

    def __call__(self, team_name: str | None) -> Any:
        self.calls.append(team_name)
        if team_name in self.hang:
            self.release.wait(60)
        return object()


def test_a_hung_build_is_given_up_at_the_reads_deadline_and_blocks_no_other_team() -> None:
    from airflow_executor_logs.executors.kubernetes.client import ClientBuildTimeout
    from airflow_executor_logs.executors.resilience.deadline import Deadline

    factory = _HangingFactory("team-a")
    cache = CountingCache(factory)
    try:
        with pytest.raises(ClientBuildTimeout, match=r"not built within 0\.05 s"):
            cache.get("team-a", 300, Deadline(0.05))
        assert cache.get("team-b", 300, Deadline(30)) is not None  # not behind team-a's lock or build
        assert cache.builds == 1
    finally:
        factory.release.set()


def test_a_read_after_the_hung_build_outlived_its_deadline_starts_a_new_one() -> None:
    from airflow_executor_logs.executors.kubernetes.client import ClientBuildTimeout, KubeClientCache
    from airflow_executor_logs.executors.resilience.deadline import Deadline
    from airflow_executor_logs_testing.kube_client import FakeClock

    factory, clock = _HangingFactory("team-a"), FakeClock()
    cache = KubeClientCache(factory, clock=clock)
    try:
        with pytest.raises(ClientBuildTimeout):
            cache.get("team-a", 300, Deadline(0.01))
        with pytest.raises(ClientBuildTimeout):
            cache.get("team-a", 300, Deadline(0.01))  # the same build: still within its starter's deadline
        assert factory.calls == ["team-a"]
        clock.advance(1)
        factory.hang.clear()  # the plugin works again (fixed credentials)
        api = cache.get("team-a", 300, Deadline(30))
        assert factory.calls == ["team-a", "team-a"]  # a rebuild, not held by the hung one
        assert cache.get("team-a", 300) is api
    finally:
        factory.release.set()


def test_hung_builds_left_running_are_bounded_per_team() -> None:
    from airflow_executor_logs.executors.kubernetes.client import ClientBuildTimeout, KubeClientCache
    from airflow_executor_logs.executors.resilience.deadline import Deadline
    from airflow_executor_logs_testing.kube_client import FakeClock

    factory, clock = _HangingFactory("team-a"), FakeClock()
    cache = KubeClientCache(factory, clock=clock)
    try:
        for _ in range(10):
            with pytest.raises(ClientBuildTimeout):
                cache.get("team-a", 300, Deadline(0.01))
            clock.advance(1)
        assert len(factory.calls) == 1 + KubeClientCache.MAX_ABANDONED
    finally:
        factory.release.set()
