"""
The fixtures and markers of ``tests_common`` that the provider's task-log tests use, on a sqlite DB made once.

``AIRFLOW_HOME`` and the DB are set by ``scripts/provider_tests.sh`` before Airflow is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db_test: uses Airflow's metadata DB")


@pytest.fixture(scope="session", autouse=True)
def _airflow_db() -> None:
    """Create the metadata tables once (from the ORM, as ``airflow db migrate`` does on an empty DB)."""
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture
def testing_dag_bundle() -> None:
    """The Dag bundle named ``testing``, which the provider's tests serialize their Dags into."""
    from tests_common.test_utils.dag import ensure_bundle

    ensure_bundle()


@pytest.fixture
def clean_executor_loader() -> Iterator[None]:
    """Airflow's executor loader forgets the executors it loaded, before and after the test."""
    from tests.support.airflow_state import reset_executor_caches

    reset_executor_caches()
    yield
    reset_executor_caches()


def _task_instance(session: Any, operator_class: type, dag_id: str, task_id: str, **kwargs: Any) -> Any:
    """
    A Dag of one task serialized into the DB, a run of it, and that run's task instance (with its task), bound
    to ``session`` as Airflow's fixture leaves it (a read may lazy-load its relations).
    """
    import datetime

    from airflow.models.dag import DAG
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from tests_common.test_utils.dag import sync_dag_to_db

    logical_date = kwargs.pop("logical_date", None) or datetime.datetime(2016, 1, 1, tzinfo=datetime.timezone.utc)
    run_type = kwargs.pop("run_type", DagRunType.MANUAL)
    state = kwargs.pop("state", None)
    run_id = kwargs.pop("run_id", None) or f"{run_type.value}__{logical_date.isoformat()}"
    with DAG(dag_id, schedule=None, start_date=logical_date) as dag:
        task = operator_class(task_id=task_id, **kwargs)
    serialized = sync_dag_to_db(dag)
    dag_run = serialized.create_dagrun(
        run_id=run_id,
        logical_date=logical_date,
        data_interval=(logical_date, logical_date),
        run_after=logical_date,
        run_type=run_type,
        triggered_by=DagRunTriggeredByType.TEST,
        state=DagRunState.RUNNING,
        session=session,
    )
    session.commit()
    ti = dag_run.get_task_instance(task.task_id, session=session)
    ti.task = serialized.get_task(task.task_id)
    if state is not None:
        ti.state = state
        session.commit()
    return ti


@pytest.fixture
def _session() -> Iterator[Any]:
    from airflow import settings

    session = settings.Session()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture
def create_task_instance(_session: Any) -> Callable[..., Any]:
    """``create_task_instance(dag_id=..., task_id=..., run_type=..., logical_date=..., state=...)``."""
    from airflow.providers.standard.operators.empty import EmptyOperator

    def create(dag_id: str = "dag", task_id: str = "op1", **kwargs: Any) -> Any:
        return _task_instance(_session, EmptyOperator, dag_id, task_id, **kwargs)

    return create


@pytest.fixture
def create_task_instance_of_operator(_session: Any) -> Callable[..., Any]:
    """``create_task_instance_of_operator(OperatorClass, dag_id=..., task_id=..., **operator_kwargs)``."""

    def create(operator_class: type, *, dag_id: str, task_id: str, **kwargs: Any) -> Any:
        return _task_instance(_session, operator_class, dag_id, task_id, **kwargs)

    return create
