"""The executor doubles (``executors``): what each does, and what it writes to the journal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs_testing import executors as fx
from airflow_executor_logs_testing.executor_journal import JOURNAL_ENV, read_build_journal
from tests.support.build_overlaps import build_intervals
from tests.support.processes import children_stopped_on_exit
from tests.support.task_instances import fake_ti


@pytest.fixture(autouse=True)
def _no_child_outlives_a_failed_test() -> Iterator[None]:
    """The doubles fork Managers: whatever a test's assertions say, what it left is stopped by PID after it."""
    with children_stopped_on_exit():
        yield


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal"
    monkeypatch.setenv(JOURNAL_ENV, str(path))
    return path


class _RaisesInInit(fx.CountingExecutor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raise RuntimeError("boom")


def test_a_construction_is_journaled_whole_even_when_it_raises(journal: Path) -> None:
    fx.PlainExecutor()
    with pytest.raises(RuntimeError, match="boom"):
        _RaisesInInit()
    entries = read_build_journal(journal)
    assert [(e.event, e.executor, e.pid) for e in entries] == [
        ("build", "PlainExecutor", os.getpid()),
        ("built", "PlainExecutor", os.getpid()),
        ("build", "_RaisesInInit", os.getpid()),
        ("built", "_RaisesInInit", os.getpid()),
    ]
    assert [(i.executor, i.end is not None) for i in build_intervals(entries)] == [
        ("PlainExecutor", True),
        ("_RaisesInInit", True),
    ]
    assert (fx.constructed(fx.PlainExecutor), fx.constructed(_RaisesInInit), fx.ended(fx.PlainExecutor)) == (1, 1, 0)


def test_without_a_journal_nothing_is_written_or_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOURNAL_ENV, raising=False)
    fx.PlainExecutor()
    assert fx.constructed(fx.PlainExecutor) == 0


def test_forking_log_executor_ends_like_provider_10_18(journal: Path) -> None:
    never_started = fx.ForkingLogExecutor()
    with pytest.raises(RuntimeError, match=r"end\(\) called before start\(\)"):
        never_started.end()
    never_started._manager.shutdown()

    executor = fx.ForkingLogExecutor()
    manager = executor._manager._process  # type: ignore[attr-defined]
    assert manager.is_alive()
    assert executor.get_task_log(fake_ti(task_id="t"), 2) == ([fx.FALLBACK_SOURCE], ["line for t try 2"])
    executor.start()
    executor.end()
    assert manager.exitcode is not None  # shut down and joined
    assert fx.ended(fx.ForkingLogExecutor) == 2
    assert fx.FALLBACK_LINE.format(task_id="t", try_number=2) == "line for t try 2"
