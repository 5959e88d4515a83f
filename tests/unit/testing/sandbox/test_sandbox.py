"""The api-server sandbox's pure parts: templates, environment, seeding parameters, commands; no Airflow run."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from airflow_executor_logs.testing.sandbox import (
    DAG_ID,
    RUN_ID,
    TASK_ID,
    AirflowSandbox,
    SandboxError,
    free_port,
    sandbox_env,
    task_log_path,
    write_unreachable_kubeconfig,
)
from airflow_executor_logs.testing.sandbox.home import dag_file_text, template
from airflow_executor_logs.testing.sandbox.seeding import parse_seed_output, run_logged, seed_params


def test_templates_are_package_data_and_valid() -> None:
    dag = dag_file_text()
    compile(dag, "dag.py", "exec")
    assert f"dag_id={DAG_ID!r}" in dag
    assert f"task_id={TASK_ID!r}" in dag
    compile(template("seed_running_tis.py.tmpl"), "seed.py", "exec")


def test_unreachable_kubeconfig_points_at_a_closed_local_port(tmp_path: Path) -> None:
    path = write_unreachable_kubeconfig(tmp_path / "kubeconfig", namespace="ns1")
    config = yaml.safe_load(path.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://127.0.0.1:")
    assert config["contexts"][0]["context"]["namespace"] == "ns1"
    port = int(server.rsplit(":", 1)[1])
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_free_port_can_be_bound() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_env_drops_the_callers_airflow_settings_and_adds_the_sandboxs(tmp_path: Path) -> None:
    base = {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW_HOME": "/elsewhere", "PATH": "/bin"}
    env = sandbox_env(
        base,
        root=tmp_path,
        kubeconfig=tmp_path / "kc",
        namespace="ns1",
        logging_config_class="my.LOGGING",
        extra_env={"AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor,LocalExecutor", "X": "1"},
    )
    assert env["PATH"] == "/bin"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow_home")
    assert env["TMPDIR"] == str(tmp_path / "tmp")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow_home' / 'airflow.db'}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "KubernetesExecutor,LocalExecutor"  # extra_env wins
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE"] == str(tmp_path / "kc")
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"] == "ns1"
    assert env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] == "my.LOGGING"
    assert env["X"] == "1"
    assert "PYTHONPATH" not in env  # an installed package needs no source checkout


def test_env_without_kubeconfig_leaves_kubernetes_alone(tmp_path: Path) -> None:
    env = sandbox_env({}, root=tmp_path, kubeconfig=None)
    assert not [k for k in env if "KUBE" in k]
    assert "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS" not in env


def test_seed_params_list_the_main_run_first_and_refuse_duplicates() -> None:
    params = seed_params("KubernetesExecutor", [("other", "LocalExecutor"), ("none", None)])
    assert [(r["run_id"], r["executor"]) for r in params["runs"]] == [
        (RUN_ID, "KubernetesExecutor"),
        ("other", "LocalExecutor"),
        ("none", None),
    ]
    with pytest.raises(SandboxError, match="unique"):
        seed_params("KubernetesExecutor", [(RUN_ID, None)])


def test_parse_seed_output_takes_the_last_json_line() -> None:
    out = 'log line\n{"ti_id": "old"}\nmore\n{"dag_version_id": "v", "ti_id": "t"}\n'
    assert parse_seed_output(out) == {"dag_version_id": "v", "ti_id": "t"}
    with pytest.raises(SandboxError, match="no result"):
        parse_seed_output("Traceback: nothing seeded\n")


def test_run_logged_returns_output_and_logs_it(tmp_path: Path) -> None:
    log = tmp_path / "commands.log"
    out = run_logged([sys.executable, "-c", "print('hello')"], env={}, cwd=tmp_path, log_path=log, timeout=30)
    assert out.strip() == "hello"
    assert "hello" in log.read_text()


def test_run_logged_raises_with_the_tail_on_failure(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    with pytest.raises(SandboxError, match=r"exited with 3:\nboom"):
        run_logged(cmd, env={}, cwd=tmp_path, log_path=tmp_path / "log", timeout=30)


def test_run_logged_stops_a_command_that_times_out(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    with pytest.raises(SandboxError, match="timed out"):
        run_logged([sys.executable, "-c", code], env={}, cwd=tmp_path, log_path=tmp_path / "log", timeout=2)
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_prepared_sandbox_and_its_server_command(tmp_path: Path) -> None:
    sandbox = AirflowSandbox(base_dir=tmp_path, logging_config_class="my.LOGGING").prepare()
    try:
        assert sandbox.root.parent == tmp_path.resolve()
        assert Path(sandbox.tmpdir).is_dir()
        assert Path(sandbox.env["KUBECONFIG"]).is_file()  # the unreachable one
        server = sandbox.api_server(workers=3, server_type="gunicorn", worker_refresh_interval=7, port=12345)
        assert server.command()[1:] == ["api-server", "-H", "127.0.0.1", "-p", "12345", "--workers", "3"]
        env = server.env()
        assert env["TMPDIR"] == str(Path(sandbox.tmpdir) / "api-12345")  # its own: Managers are attributed to it
        assert env["AIRFLOW__API__SERVER_TYPE"] == "gunicorn"
        assert env["AIRFLOW__API__WORKER_REFRESH_INTERVAL"] == "7"
        assert server.task_log_path(2, run_id="r") == task_log_path(DAG_ID, "r", TASK_ID, 2)
        assert server.task_log_path() == f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{TASK_ID}/logs/1"
    finally:
        sandbox.cleanup()
    assert not sandbox.root.exists()


def test_unprepared_sandbox_says_so() -> None:
    with pytest.raises(SandboxError, match="not created"):
        _ = AirflowSandbox().root
