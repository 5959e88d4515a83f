"""The task-handler mixin: its hooks read through the pipeline after giving the session's connection back.

``release_db_connection``: only a clean, top-level transaction of the task instance's session is ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, String, create_engine
from sqlalchemy.orm import Session, declarative_base

from airflow_executor_logs.executors.log_pipeline import process_pipeline
from airflow_executor_logs.utils.log import task_handler
from airflow_executor_logs.utils.log.task_handler import (
    ExecutorLogsFileTaskHandler,
    ExecutorLogStandIn,
    release_db_connection,
)

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


class RecordingPipeline:
    """Stands in for an ExecutorLogPipeline: answers both reads and remembers them."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, Any, int]] = []

    def read(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        self.reads.append(("read", ti, try_number))
        return ["message"], ["line"]

    def read_streaming(self, ti: Any, try_number: int) -> tuple[list[str], list[Any]]:
        self.reads.append(("read_streaming", ti, try_number))
        return ["message"], [iter(["line"])]


@pytest.fixture
def handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ExecutorLogsFileTaskHandler]:
    released: list[Any] = []
    monkeypatch.setattr(task_handler, "release_db_connection", released.append)
    handler = ExecutorLogsFileTaskHandler(base_log_folder=str(tmp_path))
    handler.executor_log_pipeline = RecordingPipeline()  # type: ignore[assignment]
    handler.released = released  # type: ignore[attr-defined]
    return handler


def test_without_a_pipeline_of_its_own_the_handler_reads_through_the_process_pipeline(tmp_path: Path) -> None:
    handler = ExecutorLogsFileTaskHandler(base_log_folder=str(tmp_path))
    assert handler.pipeline is process_pipeline()


def test_the_hook_up_to_33_releases_the_connection_and_reads_through_the_pipeline(
    handler: ExecutorLogsFileTaskHandler,
) -> None:
    ti = object()
    read = handler._get_executor_get_task_log(ti)
    assert handler.released == [ti]  # type: ignore[attr-defined]
    assert read(ti, 2) == (["message"], ["line"])
    assert handler.pipeline.reads == [("read", ti, 2)]  # type: ignore[attr-defined]


def test_the_hook_of_34_releases_the_connection_and_gives_a_stand_in(handler: ExecutorLogsFileTaskHandler) -> None:
    ti = object()
    stand_in = handler._get_executor(ti)
    assert handler.released == [ti]  # type: ignore[attr-defined]
    assert isinstance(stand_in, ExecutorLogStandIn)
    assert stand_in.get_task_log(ti, 1) == (["message"], ["line"])
    messages, streams = stand_in.get_streaming_task_log(ti, 3)
    assert (messages, [list(stream) for stream in streams]) == (["message"], [["line"]])
    assert handler.pipeline.reads == [("read", ti, 1), ("read_streaming", ti, 3)]  # type: ignore[attr-defined]


# -- the remote read of a live try: bounded, its failure a counted notice ------------------------------------------


def _remote_pipeline(timeout: float = 0.3, max_blocked: int = 2) -> Any:
    from airflow_executor_logs.config import Settings
    from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline

    return ExecutorLogPipeline(settings=Settings(remote_read_timeout=timeout), max_blocked_readers=max_blocked)


def test_a_remote_read_that_answers_is_passed_on() -> None:
    answer = (["host-1"], ['{"event": "from the store"}'])
    assert task_handler.bounded_remote_read(_remote_pipeline(), "Store", lambda: answer) == answer


def test_no_remote_store_is_cores_own_signal_and_passes() -> None:
    def read() -> Any:
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        task_handler.bounded_remote_read(_remote_pipeline(), "Store", read)


def test_a_remote_read_that_fails_is_a_notice_counted_out_of_log_pos() -> None:
    from airflow_executor_logs.utils.log import continuation

    def read() -> Any:
        raise ConnectionError("refused")

    with continuation.reading({"log_pos": 3}) as current:
        sources, lines = task_handler.bounded_remote_read(_remote_pipeline(), "Store", read)
    assert sources == ["Remote logs unavailable: Store: ConnectionError: refused"]
    assert "Store failed: ConnectionError" in lines[0]
    assert current.notices == 1


def test_a_hung_remote_read_is_cut_at_its_deadline_and_hung_threads_are_bounded() -> None:
    import threading
    import time

    release = threading.Event()
    pipeline = _remote_pipeline(timeout=0.3, max_blocked=2)

    def hang() -> Any:
        release.wait(30)
        return [], []

    try:
        times, answers = [], []
        for _ in range(4):
            started = time.monotonic()
            answers.append(task_handler.bounded_remote_read(pipeline, "Store", hang))
            times.append(time.monotonic() - started)
        assert all(0.25 <= took < 3.0 for took in times[:2]), times
        assert all(took < 0.25 for took in times[2:]), times  # two threads left blocked: the rest refused at once
        assert "timed out (0.3 s)" in answers[0][1][0]
        assert "skipped: earlier reads still blocked" in answers[3][1][0]
        assert pipeline.guard.blocked("Store") == 2
    finally:
        release.set()


def test_a_streamed_remote_answer_is_cut_at_the_deadline_too() -> None:
    import threading

    release = threading.Event()

    def lines() -> Iterator[str]:
        yield "first"
        release.wait(30)
        yield "never"

    try:
        _sources, streams = task_handler.bounded_remote_read(
            _remote_pipeline(timeout=0.3), "Store", lambda: ([], [lines()])
        )
        read = list(streams[0])
        assert read[0] == "first"
        assert "timed out after 0.3 s ([executor_logs] remote_read_timeout)" in read[-1]
    finally:
        release.set()
