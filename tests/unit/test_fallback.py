"""The short-lived fallback: every exit path ends the executor and leaves no process behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from airflow_executor_logs.executors.task_log import read_running_task_log
from tests.support import fake_executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.processes import child_pids, describe, new_children, zombies
from tests.support.task_instances import fake_ti

DEADLINE = 1.5


@pytest.fixture(autouse=True)
def _all_fakes_configured() -> Iterator[None]:
    fx.release.clear()
    overrides: dict[tuple[str, str], str | None] = {
        ("core", "executor"): fx.all_executors_setting(),
        ("executor_logs", "fallback_timeout"): str(DEADLINE),
    }
    with conf_vars(overrides):
        yield
    fx.release.set()


def _read(cls: type) -> tuple[list[str], list[str]]:
    return read_running_task_log(fake_ti(cls.__name__), 2)


def _assert_nothing_left(before: set[int]) -> None:
    left = new_children(before)
    assert not left, describe(left)
    assert not zombies()


def test_returns_the_executors_answer_and_ends_it() -> None:
    before = child_pids()
    ended = fx.ManagerExecutor.ended
    assert _read(fx.ManagerExecutor) == (["read by ManagerExecutor"], ["line for task try 2"])
    assert fx.ManagerExecutor.ended == ended + 1
    _assert_nothing_left(before)


def test_get_task_log_raising_is_reported_and_cleaned_up() -> None:
    before = child_pids()
    messages, logs = _read(fx.GetLogRaisesExecutor)
    assert messages == []
    assert "GetLogRaisesExecutor failed to read logs: RuntimeError: get_task_log exploded" in logs[0]
    assert fx.GetLogRaisesExecutor.ended >= 1
    _assert_nothing_left(before)


def test_end_raising_is_tolerated() -> None:
    before = child_pids()
    assert _read(fx.EndRaisesExecutor) == (["read by EndRaisesExecutor"], ["line for task try 2"])
    _assert_nothing_left(before)


def test_end_not_implemented_is_tolerated() -> None:
    before = child_pids()
    assert _read(fx.EndNotImplementedExecutor)[0] == ["read by EndNotImplementedExecutor"]
    _assert_nothing_left(before)


def test_init_raising_after_starting_a_manager_leaves_no_process() -> None:
    before = child_pids()
    _messages, logs = _read(fx.InitRaisesExecutor)
    assert "init exploded after starting a Manager" in logs[0]
    _assert_nothing_left(before)


def test_already_dead_manager_is_tolerated() -> None:
    before = child_pids()
    assert _read(fx.DeadManagerExecutor)[0] == ["read by DeadManagerExecutor"]
    _assert_nothing_left(before)


def test_bare_process_started_by_init_is_reaped() -> None:
    before = child_pids()
    assert _read(fx.ProcessExecutor)[0] == ["read by ProcessExecutor"]
    _assert_nothing_left(before)


def _thread_named(cls: type) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"executor-logs-{cls.__name__}"]


@pytest.mark.parametrize("cls", [fx.GetLogHangsExecutor, fx.EndHangsExecutor, fx.InitHangsExecutor])
def test_deadline_stops_processes_while_the_call_is_still_blocked(cls: type) -> None:
    before = child_pids()
    started = time.monotonic()
    _messages, logs = _read(cls)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + 1.0, elapsed  # a Manager is stopped within its 2 s grace, usually at once
    assert f"{cls.__name__} did not return logs within {DEADLINE:g} s" in logs[0]
    # The blocked call goes on in a daemon thread, but every process is already gone.
    blocked = _thread_named(cls)
    assert blocked
    assert all(thread.daemon for thread in blocked)
    _assert_nothing_left(before)
    # Once the fault clears, the thread finishes and still leaves nothing behind.
    fx.release.set()
    for thread in blocked:
        thread.join(10)
    assert not any(thread.is_alive() for thread in blocked)
    _assert_nothing_left(before)


def test_a_hung_construction_does_not_block_later_reads() -> None:
    before = child_pids()
    _read(fx.InitHangsExecutor)  # times out, holding the construction lock until released for it
    assert _read(fx.ManagerExecutor)[0] == ["read by ManagerExecutor"]
    fx.release.set()
    _assert_nothing_left(before)


def test_warns_once_per_class(caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        _read(fx.CountingExecutor)
    _read(fx.ManagerExecutor)
    warnings = [r.getMessage() for r in caplog.records if "has no class-level log reader" in r.getMessage()]
    assert len(warnings) == 2
    assert any("CountingExecutor" in w for w in warnings)
    assert any("ManagerExecutor" in w for w in warnings)


def test_fallback_can_be_switched_off() -> None:
    with conf_vars({("executor_logs", "fallback_enabled"): "False"}):
        constructed = fx.constructed.get("CountingExecutor", 0)
        messages, logs = _read(fx.CountingExecutor)
    assert messages == []
    assert "fallback_enabled is off" in logs[0]
    assert fx.constructed.get("CountingExecutor", 0) == constructed
