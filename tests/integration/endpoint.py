"""The real FastAPI log endpoint in-process, and task-instance rows changed for one test."""

from __future__ import annotations

import contextlib
import logging
import logging.config
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from airflow_executor_logs.logging_config import LOGGING_CONFIG


@dataclass
class LogResponse:
    status_code: int
    text: str
    elapsed: float


class LogEndpoint:
    """``GET /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/logs/{try}`` through a TestClient."""

    def __init__(self, client: Any, token: str, dag_id: str, task_id: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.dag_id = dag_id
        self.task_id = task_id

    def get(self, run_id: str, try_number: int | str = 1, *, ndjson: bool = False) -> LogResponse:
        url = f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{self.task_id}/logs/{try_number}"
        accept = "application/x-ndjson" if ndjson else "application/json"
        started = time.monotonic()
        response = self.client.get(url, headers={**self.headers, "Accept": accept})
        return LogResponse(response.status_code, response.text, time.monotonic() - started)


@contextlib.contextmanager
def log_endpoint(
    dag_id: str, task_id: str, config: dict[str, Any] | None = None, *, raise_server_exceptions: bool = True
) -> Iterator[LogEndpoint]:
    """
    A TestClient on the real app with ``config`` (our LOGGING_CONFIG unless given) on ``airflow.task``;
    ``raise_server_exceptions=False``: an exception in the app is a 500 answer, as a real server gives it.
    """
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    task_logger = logging.getLogger("airflow.task")
    saved = list(task_logger.handlers)
    logging.config.dictConfig(LOGGING_CONFIG if config is None else config)
    try:
        with TestClient(create_app("core"), raise_server_exceptions=raise_server_exceptions) as client:
            token = client.get("/auth/token").json()["access_token"]
            yield LogEndpoint(client, token, dag_id, task_id)
    finally:
        task_logger.handlers[:] = saved


@contextlib.contextmanager
def task_instance_changed(dag_id: str, run_id: str, task_id: str, **fields: Any) -> Iterator[None]:
    """Set columns of one task-instance row for the block, then put the old values back."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    def row(session: Any) -> Any:
        return session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id).one()

    with create_session() as session:
        ti = row(session)
        saved = {name: getattr(ti, name) for name in fields}
        for name, value in fields.items():
            setattr(ti, name, value)
    try:
        yield
    finally:
        with create_session() as session:
            ti = row(session)
            for name, value in saved.items():
                setattr(ti, name, value)


def add_running_copy(dag_id: str, template_run_id: str, task_id: str, run_id: str) -> None:
    """
    A second DagRun whose task instance runs like the template's.

    Any ``run_id`` is accepted: ``[scheduler] allowed_run_id_pattern`` is opened up for the insert, as
    an operator may do.
    """
    from tests.support.airflow_state import conf_vars

    with conf_vars({("scheduler", "allowed_run_id_pattern"): ".*"}):
        _add_running_copy(dag_id, template_run_id, task_id, run_id)


def _add_running_copy(dag_id: str, template_run_id: str, task_id: str, run_id: str) -> None:
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        if session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).first() is not None:
            return
        template = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=template_run_id, task_id=task_id).one()
        template_run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=template_run_id).one()
        run = DagRun(
            dag_id=dag_id,
            run_id=run_id,
            run_type=template_run.run_type,
            state=template_run.state,
            run_after=template_run.run_after,
            logical_date=None,
            triggered_by=template_run.triggered_by,
        )
        run.created_dag_version_id = template_run.created_dag_version_id
        session.add(run)
        session.flush()
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        ti = TaskInstance(dag.get_task(task_id), run_id=run_id, dag_version_id=template.dag_version_id)
        for name in ("state", "try_number", "executor", "hostname", "queued_by_job_id", "start_date"):
            setattr(ti, name, getattr(template, name))
        session.add(ti)
