"""A real sqlite metadata DB with a RUNNING KubernetesExecutor task, and a Kubernetes API with its pod."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs_testing import FakeKubeAPI, serve_task_pod
from tests.support.sandbox import (
    DAG_ID,
    RUN_ID,
    TASK_ID,
    seed_running_task,
)

POD_LINES = [f"2026-01-01T00:00:00.{n:06d}Z pod says line {n}" for n in range(30)]


@pytest.fixture(autouse=True)
def _every_read_reaches_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    These tests change the API between reads a few milliseconds apart and check each read's answer, so
    answers are reused for 1 µs only; the tests of ``answer_ttl`` itself set it back.
    """
    monkeypatch.setenv("AIRFLOW__EXECUTOR_LOGS__ANSWER_TTL", "0.000001")


@dataclass
class SeededCluster:
    kube: FakeKubeAPI
    kubeconfig: Path
    dag_id: str = DAG_ID
    run_id: str = RUN_ID
    task_id: str = TASK_ID

    def running_ti(self) -> Any:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy.orm import joinedload

        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .options(joinedload(TaskInstance.dag_run))
                .filter_by(dag_id=self.dag_id, run_id=self.run_id, task_id=self.task_id)
                .one()
            )
            session.expunge(ti)
            return ti


@pytest.fixture(scope="session")
def seeded_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededCluster]:
    """Migrate this session's sqlite DB, seed the RUNNING task, and serve its pod on a fake API."""
    work = tmp_path_factory.mktemp("seed")
    dags_folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    seed_running_task(dict(os.environ), work, dags_folder=dags_folder, log_path=work / "seed.log")
    with FakeKubeAPI() as kube:
        cluster = SeededCluster(kube=kube, kubeconfig=kube.write_kubeconfig(work / "kubeconfig"))
        ti = cluster.running_ti()
        serve_task_pod(kube, ti, ti.try_number, POD_LINES)
        yield cluster
