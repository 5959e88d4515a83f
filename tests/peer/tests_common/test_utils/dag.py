"""``sync_dag_to_db``: a Dag as the Dag processor stores it, read back as the scheduler sees it."""

from __future__ import annotations

from typing import Any

TESTING_BUNDLE = "testing"


def ensure_bundle(name: str = TESTING_BUNDLE) -> None:
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    with create_session() as session:
        if session.get(DagBundleModel, name) is None:
            session.add(DagBundleModel(name=name))


def sync_dag_to_db(dag: Any, bundle_name: str = TESTING_BUNDLE) -> Any:
    """Serialize ``dag`` into the DB (in ``bundle_name``) and return its serialized form, which makes Dag runs."""
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.models.dagbag import DBDagBag
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    ensure_bundle(bundle_name)
    with create_session() as session:
        update_dag_parsing_results_in_db(
            bundle_name, None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )
    with create_session() as session:
        return DBDagBag().get_latest_version_of_dag(dag.dag_id, session=session)
