"""``release_db_connection``: only a clean, top-level transaction of the task instance's session is ended."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, String, create_engine
from sqlalchemy.orm import Session, declarative_base

from airflow_executor_logs.utils.log.executor_log_reader import release_db_connection

Base = declarative_base()


class Row(Base):  # type: ignore[misc,valid-type]
    __tablename__ = "row"
    id = Column(Integer, primary_key=True)
    name = Column(String(20))


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as setup:
        setup.add(Row(id=1, name="a"))
        setup.commit()
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def test_a_clean_session_gives_its_connection_back(session: Session) -> None:
    row = session.get(Row, 1)
    assert session.in_transaction()
    release_db_connection(row)
    assert not session.in_transaction()
    assert row.name == "a"  # still loaded: no expiry on commit


def test_pending_changes_are_left_to_the_caller(session: Session) -> None:
    row = session.get(Row, 1)
    row.name = "changed"
    release_db_connection(row)
    assert session.in_transaction()
    session.rollback()
    assert session.get(Row, 1).name == "a"  # nothing was committed


def test_a_savepoint_is_left_open(session: Session) -> None:
    row = session.get(Row, 1)
    savepoint = session.begin_nested()
    release_db_connection(row)
    assert savepoint.is_active
    assert session.in_nested_transaction()


def test_objects_without_a_session_are_ignored() -> None:
    release_db_connection(Row(id=2, name="detached"))
    release_db_connection(object())
