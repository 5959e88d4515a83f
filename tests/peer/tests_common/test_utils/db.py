"""Empty the tables the provider's tests fill: a table's rows go with every row that references them."""

from __future__ import annotations

from collections.abc import Iterable


def _clear(table_names: Iterable[str]) -> None:
    """Delete every row of ``table_names`` and of the tables whose foreign keys lead to them, referrers first."""
    from airflow.models.base import Base
    from airflow.utils.db import import_all_models
    from airflow.utils.session import create_session

    import_all_models()
    tables = Base.metadata.tables
    doomed = {name for name in table_names if name in tables}
    grew = True
    while grew:
        referrers = {
            table.name
            for table in tables.values()
            if table.name not in doomed and any(fk.column.table.name in doomed for fk in table.foreign_keys)
        }
        doomed |= referrers
        grew = bool(referrers)
    with create_session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in doomed:
                session.execute(table.delete())


def clear_db_runs() -> None:
    _clear(["dag_run", "task_instance", "task_instance_history", "job"])


def clear_db_dags() -> None:
    _clear(["dag", "dag_version", "serialized_dag", "dag_code", "dag_tag"])


def clear_db_dag_bundles() -> None:
    _clear(["dag_bundle"])
