"""Executor class resolution never builds an executor and reports bad names clearly."""

from __future__ import annotations

from unittest import mock

import pytest

from airflow_executor_logs import version_compat
from airflow_executor_logs.executors.resolution import ExecutorResolutionError, ExecutorResolver, ResolvedExecutor
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import executors_configured
from tests.support.task_instances import fake_ti

KUBERNETES = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor"


def resolve_executor(
    ti: object, resolver: ExecutorResolver | None = None, multi_team: bool = False
) -> ResolvedExecutor:
    return (resolver or ExecutorResolver()).resolve(ti, multi_team=multi_team)


@pytest.mark.parametrize(
    "name_on_ti",
    [
        None,  # the default executor
        "KubernetesExecutor",  # a core alias
        KUBERNETES,  # a module path
    ],
)
def test_kubernetes_resolves_without_construction(name_on_ti: str | None) -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    with mock.patch.object(KubernetesExecutor, "__init__", side_effect=AssertionError("built")) as init:
        resolved = resolve_executor(fake_ti(name_on_ti))
    assert resolved.executor_cls is KubernetesExecutor
    assert resolved.name.module_path == KUBERNETES
    init.assert_not_called()


def test_custom_alias_module_path_and_class_name() -> None:
    setting = f"KubernetesExecutor,fast:{fx.path(fx.CountingExecutor)},{fx.path(fx.ManagerExecutor)}"
    constructed = [fx.constructed(cls) for cls in fx.ALL_CLASSES]
    with executors_configured(setting):
        assert resolve_executor(fake_ti("fast")).executor_cls is fx.CountingExecutor
        assert resolve_executor(fake_ti(fx.path(fx.ManagerExecutor))).executor_cls is fx.ManagerExecutor
        assert resolve_executor(fake_ti("ManagerExecutor")).executor_cls is fx.ManagerExecutor
        assert resolve_executor(fake_ti(None)).name.alias == "KubernetesExecutor"
    assert [fx.constructed(cls) for cls in fx.ALL_CLASSES] == constructed


def test_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(ExecutorResolutionError) as raised:
        resolve_executor(fake_ti("NoSuchExecutor"))
    message = str(raised.value)
    assert "NoSuchExecutor" in message
    assert "KubernetesExecutor" in message  # what is configured instead


def test_unimportable_module_names_the_module() -> None:
    with (
        executors_configured("KubernetesExecutor,broken:not_a_module.anywhere.BrokenExecutor"),
        pytest.raises(ExecutorResolutionError) as raised,
    ):
        resolve_executor(fake_ti("broken"))
    assert "not_a_module.anywhere.BrokenExecutor" in str(raised.value)
    assert "ModuleNotFoundError" in str(raised.value)


def test_results_are_cached_per_name() -> None:
    from airflow.executors.executor_loader import ExecutorLoader

    with mock.patch.object(ExecutorLoader, "import_executor_cls", wraps=ExecutorLoader.import_executor_cls) as importer:
        resolver = ExecutorResolver()
        first = resolve_executor(fake_ti("KubernetesExecutor"), resolver)
        second = resolve_executor(fake_ti("KubernetesExecutor"), resolver)
    assert first is second
    assert importer.call_count == 1


def test_concurrent_resolution_agrees() -> None:
    from concurrent.futures import ThreadPoolExecutor

    resolver = ExecutorResolver()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: resolve_executor(fake_ti("KubernetesExecutor"), resolver), range(64)))
    assert len({id(result) for result in results}) == 1


needs_teams = pytest.mark.skipif(
    not version_compat.supports_teams(), reason="this core has no multi-team deployments (3.2 and later)"
)


@needs_teams
class TestTeams:
    """With multi-team on, the Dag's team picks team executors, and global ones still serve it."""

    SETTING = f"KubernetesExecutor;team_a={fx.path(fx.CountingExecutor)},{fx.path(fx.ManagerExecutor)}"

    def _resolve(self, name: str | None, team: str | None) -> type:
        from airflow.models.dag import DagModel

        with mock.patch.object(DagModel, "get_team_name", return_value=team) as get_team:
            resolved = resolve_executor(fake_ti(name, dag_id="team_dag"), multi_team=True)
        get_team.assert_called_once_with("team_dag")
        assert resolved.team_name == team  # looked up once, and handed to the reader
        return resolved.executor_cls

    def test_team_default_and_names(self) -> None:
        with executors_configured(self.SETTING, multi_team="True"):
            assert self._resolve(None, "team_a") is fx.CountingExecutor
            assert self._resolve("ManagerExecutor", "team_a") is fx.ManagerExecutor
            assert self._resolve(fx.path(fx.CountingExecutor), "team_a") is fx.CountingExecutor

    def test_global_executor_serves_a_team(self) -> None:
        with executors_configured(self.SETTING, multi_team="True"):
            assert self._resolve("KubernetesExecutor", "team_a") is _kubernetes()

    def test_no_team_gets_the_global_default(self) -> None:
        with executors_configured(self.SETTING, multi_team="True"):
            assert self._resolve(None, None) is _kubernetes()

    def test_team_executor_is_not_visible_to_other_teams(self) -> None:
        with (
            executors_configured(self.SETTING, multi_team="True"),
            pytest.raises(ExecutorResolutionError, match="ManagerExecutor"),
        ):
            self._resolve("ManagerExecutor", None)


def _kubernetes() -> type:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    return KubernetesExecutor


@needs_teams
def test_the_team_is_not_looked_up_without_multi_team() -> None:
    from airflow.models.dag import DagModel

    with mock.patch.object(DagModel, "get_team_name", side_effect=AssertionError("queried")) as get_team:
        resolved = resolve_executor(fake_ti("KubernetesExecutor"), multi_team=False)
    get_team.assert_not_called()
    assert resolved.team_name is None


@needs_teams
def test_a_failing_team_lookup_is_a_clear_error() -> None:
    from airflow.models.dag import DagModel

    with (
        mock.patch.object(DagModel, "get_team_name", side_effect=RuntimeError("db down")),
        pytest.raises(ExecutorResolutionError, match="Cannot find the team of Dag 'dag': RuntimeError: db down"),
    ):
        resolve_executor(fake_ti("KubernetesExecutor"), multi_team=True)
