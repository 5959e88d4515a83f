"""``AirflowSandbox`` (``sandbox.sandbox``): layout, environment, seeded ids, clean-up; no Airflow run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox import RUN_ID, AirflowSandbox, SandboxError
from tests.support.sandbox import sandbox as sandbox_module


class StubServer:
    """Stands in for an ``ApiServer`` the sandbox tracks."""

    def __init__(self, sandbox: AirflowSandbox) -> None:
        self.sandbox = sandbox
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1
        self.sandbox.untrack(self)  # type: ignore[arg-type]


def test_prepared_sandbox_layout_and_cleanup(tmp_path: Path) -> None:
    sandbox = AirflowSandbox(base_dir=tmp_path, logging_config_class="my.LOGGING").prepare()
    try:
        assert sandbox.root.parent == tmp_path.resolve()
        assert sandbox.root.name.startswith("afel-")
        assert [
            p.is_dir() for p in (sandbox.airflow_home, Path(sandbox.tmpdir), sandbox.dags_folder, sandbox.logs_dir)
        ] == [True] * 4
        assert sandbox.db_path == sandbox.root / "airflow_home" / "airflow.db"
        assert Path(sandbox.env["KUBECONFIG"]) == sandbox.root / "kubeconfig.yaml"  # the unreachable one
        assert Path(sandbox.env["KUBECONFIG"]).is_file()
        assert sandbox.env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] == "my.LOGGING"
        assert sandbox.airflow_bin == str(Path(sys.executable).parent / "airflow")
    finally:
        sandbox.cleanup()
    assert not sandbox.root.exists()


def test_a_given_kubeconfig_is_used_and_none_leaves_kubernetes_alone(tmp_path: Path) -> None:
    given = AirflowSandbox(base_dir=tmp_path, kubeconfig=tmp_path / "mine", namespace="ns").prepare()
    untouched = AirflowSandbox(base_dir=tmp_path, kubeconfig=None).prepare()
    try:
        assert (given.env["KUBECONFIG"], given.env["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"]) == (
            str(tmp_path / "mine"),
            "ns",
        )
        assert not (given.root / "kubeconfig.yaml").exists()
        assert [k for k in untouched.env if "KUBE" in k] == []
    finally:
        given.cleanup()
        untouched.cleanup()


def test_unprepared_sandbox_says_so() -> None:
    with pytest.raises(SandboxError, match="not created"):
        _ = AirflowSandbox().root
    AirflowSandbox().cleanup()  # nothing to clean


def test_create_seeds_and_keeps_the_ids_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_seed(env: dict[str, str], work_dir: Path, **kwargs: Any) -> dict[str, str]:
        calls.append({"env": env, "work_dir": work_dir, **kwargs})
        return {"dag_version_id": "v", "ti_id": "main-ti", "ti_id:other": "other-ti"}

    monkeypatch.setattr(sandbox_module, "seed_running_task", fake_seed)
    sandbox = AirflowSandbox(base_dir=tmp_path, migrate_timeout=9.0, extra_runs=[("other", "LocalExecutor")])
    with sandbox:
        assert (sandbox.dag_version_id, sandbox.ti_ids) == ("v", {RUN_ID: "main-ti", "other": "other-ti"})
        (call,) = calls
        assert call == {
            "env": sandbox.env,
            "work_dir": sandbox.root,
            "dags_folder": sandbox.dags_folder,
            "log_path": sandbox.logs_dir / "commands.log",
            "executor": "KubernetesExecutor",
            "timeout": 9.0,
            "extra_runs": (("other", "LocalExecutor"),),
        }
    assert not sandbox.root.exists()


def test_a_failed_create_removes_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_seed(*args: Any, **kwargs: Any) -> dict[str, str]:
        raise SandboxError("migrate failed")

    monkeypatch.setattr(sandbox_module, "seed_running_task", failing_seed)
    sandbox = AirflowSandbox(base_dir=tmp_path)
    with pytest.raises(SandboxError, match="migrate failed"), sandbox:
        pytest.fail("the block must not run")
    assert list(tmp_path.iterdir()) == []


def test_cleanup_stops_tracked_servers_and_keep_keeps_the_directory(tmp_path: Path) -> None:
    sandbox = AirflowSandbox(base_dir=tmp_path, keep=True).prepare()
    servers = [StubServer(sandbox), StubServer(sandbox)]
    for server in servers:
        sandbox.track(server)  # type: ignore[arg-type]
    sandbox.untrack(servers[1])  # type: ignore[arg-type]
    sandbox.untrack(servers[1])  # type: ignore[arg-type]  # not tracked: ignored
    sandbox.cleanup()
    assert [s.stopped for s in servers] == [1, 0]
    assert sandbox.root.is_dir()  # kept


def test_keep_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_EXECUTOR_LOGS_KEEP_SANDBOX", "1")
    assert (AirflowSandbox().keep, AirflowSandbox(keep=False).keep) == (True, False)
    monkeypatch.delenv("AIRFLOW_EXECUTOR_LOGS_KEEP_SANDBOX")
    assert AirflowSandbox().keep is False
