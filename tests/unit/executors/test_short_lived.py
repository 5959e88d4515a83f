"""
Short-lived executors: every exit path ends the executor, and no process it started outlives the read,
whoever started it and whenever, held on the instance or not, child or grandchild.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import psutil
import pytest

from airflow_executor_logs import metrics
from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.executors.resolution import ExecutorResolver, ResolvedExecutor
from airflow_executor_logs.executors.short_lived import (
    ExecutorDeadlineExceeded,
    call_with_short_lived_executor,
    read_with_short_lived_executor,
    short_lived_executor,
)
from airflow_executor_logs.metrics import RecordingMetrics
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.processes import (
    HELPER,
    child_pids,
    children_stopped_on_exit,
    describe,
    forks_of_this_process,
    helper_pids,
    new_children,
    start_the_helper,
    zombies,
)
from tests.support.task_instances import fake_ti


@pytest.fixture(autouse=True, scope="module")
def _helper_is_up() -> None:
    start_the_helper()


@pytest.fixture(autouse=True)
def _no_child_outlives_a_failed_test() -> Iterator[None]:
    """Whatever a test's assertions say, the processes it left are stopped by PID after it."""
    with children_stopped_on_exit():
        yield


#: The deadline of reads that hang: short, since each of them waits it out (a read that does not hang takes
#: about 0.15 s). Reads that must not hang get :data:`READ_DEADLINE`.
DEADLINE = 0.6
READ_DEADLINE = 10.0


@pytest.fixture(autouse=True)
def marker() -> Iterator[str]:
    """Every process the doubles start carries this marker in its environment."""
    value = uuid.uuid4().hex
    os.environ[fx.MARKER_ENV] = value
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield value
    os.environ.pop(fx.MARKER_ENV, None)


@pytest.fixture
def pipeline() -> ExecutorLogPipeline:
    return ExecutorLogPipeline(settings=Settings(fallback_timeout=READ_DEADLINE), helper=HELPER)


@pytest.fixture
def hasty() -> ExecutorLogPipeline:
    """A pipeline for reads that hang: they wait :data:`DEADLINE` out."""
    return ExecutorLogPipeline(settings=Settings(fallback_timeout=DEADLINE), helper=HELPER)


def _resolve(cls: type) -> ResolvedExecutor:
    return ExecutorResolver().resolve(fake_ti(cls.__name__), multi_team=False)


def _marked_alive(marker: str) -> list[str]:
    """Live processes anywhere on the machine (reparented to PID 1 included) carrying ``marker``, but our helper."""
    found = []
    for process in psutil.process_iter():
        if process.pid in helper_pids():
            continue
        try:
            if process.environ().get(fx.MARKER_ENV) == marker and process.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{process.pid} ppid={process.ppid()} {' '.join(process.cmdline())[:80]}")
        except (psutil.Error, OSError):
            continue
    return found


def _assert_nothing_left(before: set[int], marker: str) -> None:
    left = new_children(before)
    assert not left, describe(left)
    assert not zombies()
    assert not _marked_alive(marker)


# ------------------------------------------------------------------------- the context manager, in process


def test_the_context_manager_builds_ends_and_shuts_the_manager_down() -> None:
    before = child_pids()
    ended = fx.ended(fx.ManagerExecutor)
    with short_lived_executor(_resolve(fx.ManagerExecutor)) as executor:
        assert isinstance(executor, fx.ManagerExecutor)
        manager_process = executor._manager._process  # type: ignore[attr-defined]
        assert manager_process.is_alive()
        assert executor.get_task_log(fake_ti(), 2) == (["read by ManagerExecutor"], ["line for task try 2"])
    assert fx.ended(fx.ManagerExecutor) == ended + 1
    assert not manager_process.is_alive()
    assert not new_children(before)


@pytest.mark.parametrize("error", [KeyError("boom"), KeyboardInterrupt(), SystemExit(3)], ids=type)
def test_the_context_manager_closes_on_an_exception(error: BaseException) -> None:
    before = child_pids()
    ended = fx.ended(fx.ManagerExecutor)
    held: list[Any] = []

    def read_that_raises() -> None:
        with short_lived_executor(_resolve(fx.ManagerExecutor)) as executor:
            held.append(executor._manager._process)  # type: ignore[attr-defined]
            raise error

    with pytest.raises(type(error)):
        read_that_raises()
    assert fx.ended(fx.ManagerExecutor) == ended + 1
    assert not held[0].is_alive()
    assert not new_children(before)


def test_the_context_manager_closes_on_a_return_from_the_block() -> None:
    def first_line() -> str:
        with short_lived_executor(_resolve(fx.ManagerExecutor)) as executor:
            held.append(executor._manager._process)  # type: ignore[attr-defined]
            return executor.get_task_log(fake_ti(), 1)[1][0]
        raise AssertionError("unreachable")

    before = child_pids()
    ended = fx.ended(fx.ManagerExecutor)
    held: list[Any] = []
    assert first_line() == "line for task try 1"
    assert fx.ended(fx.ManagerExecutor) == ended + 1
    assert not held[0].is_alive()
    assert not new_children(before)


def test_the_context_manager_closes_when_its_generator_is_closed() -> None:
    """A read abandoned mid-block (its generator closed) still ends the executor."""

    def lines() -> Iterator[str]:
        with short_lived_executor(_resolve(fx.ManagerExecutor)) as executor:
            held.append(executor._manager._process)  # type: ignore[attr-defined]
            yield "first"
            yield "never read"

    before = child_pids()
    ended = fx.ended(fx.ManagerExecutor)
    held: list[Any] = []
    stream = lines()
    assert next(stream) == "first"
    stream.close()
    assert fx.ended(fx.ManagerExecutor) == ended + 1
    assert not held[0].is_alive()
    assert not new_children(before)


def test_the_context_manager_stops_managers_and_processes_held_in_containers() -> None:
    import multiprocessing

    before = child_pids()
    with short_lived_executor(_resolve(fx.CountingExecutor)) as executor:
        context = multiprocessing.get_context("fork")
        manager = context.Manager()
        worker = context.Process(target=time.sleep, args=(3600,), daemon=True)
        worker.start()
        executor.helpers = [manager]  # type: ignore[attr-defined]
        executor.workers = {"w": worker}  # type: ignore[attr-defined]
        manager_process = manager._process  # type: ignore[attr-defined]
    assert not manager_process.is_alive()
    assert not worker.is_alive()
    assert worker.exitcode == -15  # terminated, not left to run its hour
    assert not new_children(before)


def test_a_build_that_raises_propagates_and_the_block_never_runs() -> None:
    with (
        mock.patch("airflow.executors.executor_loader.ExecutorLoader.load_executor", side_effect=ImportError("no")),
        pytest.raises(ImportError, match="no"),
        short_lived_executor(_resolve(fx.GetLogRaisesExecutor)),
    ):
        pytest.fail("the block ran without an executor")


def test_the_context_manager_stops_processes_held_on_the_instance() -> None:
    before = child_pids()
    with short_lived_executor(_resolve(fx.StartsOnReadExecutor)) as executor:
        executor.start()
        worker = executor.worker  # type: ignore[attr-defined]
        assert worker.is_alive()
    assert not worker.is_alive()
    # The helper Popen is kept nowhere: out of reach in process; call_with_short_lived_executor stops it.
    for pid in new_children(before, settle=0):
        psutil.Process(pid).kill()
        psutil.Process(pid).wait(5)


# ------------------------------------------------------------------------- in an isolated child


def _get_task_log(try_number: int, executor: Any) -> Any:
    return executor.get_task_log(fake_ti(), try_number)


def test_call_returns_the_answer_and_leaves_nothing(marker: str) -> None:
    before = child_pids()
    answer = call_with_short_lived_executor(
        _resolve(fx.GrandchildExecutor),
        functools.partial(_get_task_log, 3),
        helper=HELPER,
        deadline=Deadline(READ_DEADLINE),
    )
    assert answer == (["read by GrandchildExecutor"], ["line for task try 3"])
    _assert_nothing_left(before, marker)


def test_call_at_the_deadline_raises_and_leaves_nothing(marker: str) -> None:
    before = child_pids()
    started = time.monotonic()
    with pytest.raises(ExecutorDeadlineExceeded, match=r"GetLogHangsExecutor did not return logs within 0\.6 s"):
        call_with_short_lived_executor(
            _resolve(fx.GetLogHangsExecutor),
            functools.partial(_get_task_log, 1),
            helper=HELPER,
            deadline=Deadline(DEADLINE),
        )
    assert time.monotonic() - started < DEADLINE + 10.0  # generous for a loaded machine: the call blocks for an hour
    _assert_nothing_left(before, marker)


# ------------------------------------------------------------------------- through the pipeline


def _read(pipeline: ExecutorLogPipeline, cls: type, **ti_fields: Any) -> tuple[list[str], list[str]]:
    return pipeline.read(fake_ti(cls.__name__, **ti_fields), 2)


def test_returns_the_executors_answer_and_ends_it(pipeline: ExecutorLogPipeline, marker: str) -> None:
    before = child_pids()
    ended = fx.ended(fx.ManagerExecutor)
    assert _read(pipeline, fx.ManagerExecutor) == (["read by ManagerExecutor"], ["line for task try 2"])
    assert fx.ended(fx.ManagerExecutor) == ended + 1
    _assert_nothing_left(before, marker)


def test_get_task_log_raising_is_reported_and_cleaned_up(pipeline: ExecutorLogPipeline, marker: str) -> None:
    before = child_pids()
    ended = fx.ended(fx.GetLogRaisesExecutor)
    messages, logs = _read(pipeline, fx.GetLogRaisesExecutor)
    # The problem is a source message (core then skips served logs) and the log's last line.
    assert "GetLogRaisesExecutor failed to read logs: RuntimeError: get_task_log exploded" in messages[-1]
    assert "GetLogRaisesExecutor failed to read logs" in logs[-1]
    assert fx.ended(fx.GetLogRaisesExecutor) == ended + 1
    _assert_nothing_left(before, marker)


@pytest.mark.parametrize("cls", [fx.EndRaisesExecutor, fx.EndNotImplementedExecutor, fx.DeadManagerExecutor])
def test_end_raising_and_dead_managers_are_tolerated(pipeline: ExecutorLogPipeline, marker: str, cls: type) -> None:
    before = child_pids()
    assert _read(pipeline, cls) == ([f"read by {cls.__name__}"], ["line for task try 2"])
    _assert_nothing_left(before, marker)


def test_init_raising_after_starting_a_manager_leaves_no_process(pipeline: ExecutorLogPipeline, marker: str) -> None:
    before = child_pids()
    messages, _logs = _read(pipeline, fx.InitRaisesExecutor)
    assert (
        "InitRaisesExecutor failed to read logs: RuntimeError: init exploded after starting a Manager" in messages[-1]
    )
    _assert_nothing_left(before, marker)


@pytest.mark.parametrize("cls", [fx.ProcessExecutor, fx.StartsOnReadExecutor, fx.GrandchildExecutor])
def test_processes_kept_nowhere_are_stopped(pipeline: ExecutorLogPipeline, marker: str, cls: type) -> None:
    before = child_pids()
    for _ in range(3):
        assert _read(pipeline, cls)[0] == [f"read by {cls.__name__}"]
    _assert_nothing_left(before, marker)


@pytest.mark.parametrize("cls", [fx.GetLogHangsExecutor, fx.EndHangsExecutor, fx.InitHangsExecutor])
def test_deadline_stops_every_process_of_a_blocked_call(hasty: ExecutorLogPipeline, marker: str, cls: type) -> None:
    before = child_pids()
    started = time.monotonic()
    messages, _logs = _read(hasty, cls)
    assert time.monotonic() - started < DEADLINE + 10.0  # generous for a loaded machine: the call blocks for an hour
    assert f"{cls.__name__} did not return logs within {DEADLINE:g} s" in messages[-1]
    _assert_nothing_left(before, marker)


def test_a_hung_construction_does_not_block_later_reads(
    hasty: ExecutorLogPipeline, pipeline: ExecutorLogPipeline, marker: str
) -> None:
    """What a hung read could hold (the fork lock, the loader) is per process, not per pipeline."""
    before = child_pids()
    assert f"InitHangsExecutor did not return logs within {DEADLINE:g} s" in _read(hasty, fx.InitHangsExecutor)[0][-1]
    assert _read(pipeline, fx.ManagerExecutor) == (["read by ManagerExecutor"], ["line for task try 2"])
    _assert_nothing_left(before, marker)


def test_concurrent_reads_with_grandchildren_leave_nothing(pipeline: ExecutorLogPipeline, marker: str) -> None:
    """
    An executor whose get_task_log starts a bare subprocess and grandchildren: 10 reads, 4 threads.

    None of them forks this (threaded) process: the helper forks each read's child.
    """
    before = child_pids()
    with forks_of_this_process() as forks, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: _read(pipeline, fx.GrandchildExecutor, task_id=f"t{n}"), range(10)))
    assert forks == []
    assert results == [(["read by GrandchildExecutor"], [f"line for t{n} try 2"]) for n in range(10)]
    _assert_nothing_left(before, marker)


@pytest.fixture(params=["fork", "spawn", "forkserver"])
def start_method(request: pytest.FixtureRequest) -> Iterator[str]:
    """The default start method of this process (and so of the reads' children) for the test."""
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    yield request.param
    multiprocessing.set_start_method(previous, force=True)


@pytest.mark.parametrize("cls", [fx.ManagerExecutor, fx.StartsOnReadExecutor, fx.ForkserverManagerExecutor])
def test_every_start_method_stops_managers_forkservers_and_trackers(
    pipeline: ExecutorLogPipeline, marker: str, start_method: str, cls: type
) -> None:
    """
    The executor's Managers and processes start with the default start method; none outlives the read.

    A forkserver default is fork in the read's single-threaded child; a context asked for by name is
    what it says (ForkserverManagerExecutor: a forkserver and a resource tracker, both stopped).
    """
    before = child_pids()
    for _ in range(2):
        assert _read(pipeline, cls) == ([f"read by {cls.__name__}"], ["line for task try 2"])
    _assert_nothing_left(before, marker)


def test_a_worker_that_runs_a_forkserver_of_its_own_still_reads(pipeline: ExecutorLogPipeline, marker: str) -> None:
    """
    The read's child does not inherit this process's forkserver (it is the helper's fork, not ours).

    A child forked from this process would, and each of its Managers would then fail with
    ``ChildProcessError`` waiting for a process the forkserver, not it, started.
    """
    import multiprocessing.forkserver

    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("forkserver", force=True)
    try:
        multiprocessing.forkserver.ensure_running()
        before = child_pids()
        ours = set(_marked_alive(marker))  # this process's forkserver and resource tracker
        assert _read(pipeline, fx.ManagerExecutor) == (["read by ManagerExecutor"], ["line for task try 2"])
        assert not new_children(before)
        assert set(_marked_alive(marker)) == ours
    finally:
        multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
        multiprocessing.set_start_method(previous, force=True)


def test_identical_concurrent_reads_share_one_short_lived_executor(marker: str) -> None:
    """Eight people polling one task at once cost one executor (answers are not reused here: answer_ttl ~ 0)."""
    counted = RecordingMetrics()
    pipeline = ExecutorLogPipeline(
        settings=Settings(fallback_timeout=READ_DEADLINE, answer_ttl=1e-6), metrics=counted, helper=HELPER
    )
    before = child_pids()
    constructed = fx.constructed(fx.ManagerExecutor)
    barrier = threading.Barrier(8)

    def read(_: int) -> tuple[list[str], list[str]]:
        barrier.wait(30)
        return _read(pipeline, fx.ManagerExecutor)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, range(8)))
    assert results == [(["read by ManagerExecutor"], ["line for task try 2"])] * 8
    assert fx.constructed(fx.ManagerExecutor) - constructed < 8
    assert counted.count(metrics.SHARED_READS) == 8 - (fx.constructed(fx.ManagerExecutor) - constructed)
    _assert_nothing_left(before, marker)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [fx.ManagerExecutor, fx.ProcessExecutor, fx.StartsOnReadExecutor])
def test_fifty_concurrent_reads_leave_no_process(marker: str, cls: type) -> None:
    # As many builds at once as threads: this is about leaks, not the bulkhead (see test_log_pipeline).
    pipeline = ExecutorLogPipeline(
        settings=Settings(fallback_timeout=READ_DEADLINE, max_concurrent_fallback_reads=8), helper=HELPER
    )
    before = child_pids()
    constructed = fx.constructed(cls)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: _read(pipeline, cls, task_id=f"t{n}"), range(50)))
    assert results == [([f"read by {cls.__name__}"], [f"line for t{n} try 2"]) for n in range(50)]
    assert fx.constructed(cls) == constructed + 50
    _assert_nothing_left(before, marker)


def test_warns_once_per_class(pipeline: ExecutorLogPipeline, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        _read(pipeline, fx.CountingExecutor)
    _read(pipeline, fx.ManagerExecutor)
    warnings = [r.getMessage() for r in caplog.records if "has no class-level log reader" in r.getMessage()]
    assert len(warnings) == 2
    assert "airflow_executor_logs_testing.executors.CountingExecutor overrides get_task_log" in warnings[0]
    assert "airflow_executor_logs_testing.executors.ManagerExecutor overrides get_task_log" in warnings[1]


def test_fallback_can_be_switched_off() -> None:
    pipeline = ExecutorLogPipeline(settings=Settings(fallback_enabled=False))
    constructed = fx.constructed(fx.CountingExecutor)
    with mock.patch("airflow_executor_logs.executors.log_pipeline.read_with_short_lived_executor") as call:
        messages, logs = _read(pipeline, fx.CountingExecutor)
    call.assert_not_called()
    assert "CountingExecutor has no class-level log reader and [executor_logs] fallback_enabled is off." in messages[-1]
    assert "No log reader for CountingExecutor: set [executor_logs] fallback_enabled = True" in logs[0]
    assert fx.constructed(fx.CountingExecutor) == constructed


def test_read_with_short_lived_executor_answers_get_task_logs_lists_and_leaves_nothing() -> None:
    before = child_pids()
    ti = fake_ti("ManagerExecutor", task_id="t7")
    messages, logs = read_with_short_lived_executor(
        _resolve(fx.ManagerExecutor), ti, 3, helper=HELPER, deadline=Deadline(READ_DEADLINE)
    )
    assert (messages, logs) == (
        [fx.LOG_SOURCE.format(executor="ManagerExecutor")],
        [fx.LOG_LINE.format(task_id="t7", try_number=3)],
    )
    assert all(type(item) is str for item in [*messages, *logs])
    assert not new_children(before)
