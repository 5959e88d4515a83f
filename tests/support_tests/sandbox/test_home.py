"""The sandbox's ``AIRFLOW_HOME`` (``sandbox.home``): templates, kubeconfig, free ports, the environment."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from tests.support.sandbox.home import (
    DAG_ID,
    TASK_ID,
    airflow_bin,
    dag_file_text,
    free_port,
    sandbox_env,
    template,
    write_unreachable_kubeconfig,
)


def test_templates_are_package_data_and_valid() -> None:
    dag = dag_file_text()
    compile(dag, "dag.py", "exec")
    assert f"dag_id={DAG_ID!r}" in dag
    assert f"task_id={TASK_ID!r}" in dag
    compile(template("seed_running_tis.py.tmpl"), "seed.py", "exec")


def test_the_dag_file_names_the_given_dag_and_task() -> None:
    dag = dag_file_text("other_dag", "other_task")
    assert ("dag_id='other_dag'" in dag, "task_id='other_task'" in dag, DAG_ID in dag) == (True, True, False)
    with pytest.raises(FileNotFoundError):
        template("no-such.tmpl")


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


def test_airflow_is_the_entry_point_next_to_the_interpreter() -> None:
    assert airflow_bin("/venv/bin/python3.11") == "/venv/bin/airflow"
    assert airflow_bin(Path("/opt/py/bin/python")) == "/opt/py/bin/airflow"
