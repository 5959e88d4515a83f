"""Leak test with real processes: 50 fallback reads, 8 threads at once, nothing left behind."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_executor_logs.executors.task_log import read_running_task_log
from tests.support import fake_executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.processes import child_pids, describe, new_children, zombies
from tests.support.task_instances import fake_ti

READS = 50
THREADS = 8


@pytest.fixture(autouse=True)
def _configured() -> Iterator[None]:
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield


@pytest.mark.slow
@pytest.mark.parametrize("cls", [fx.ManagerExecutor, fx.ProcessExecutor])
def test_concurrent_fallback_reads_leave_no_process(cls: type) -> None:
    before = child_pids()
    constructed = fx.constructed.get(cls.__name__, 0)

    def read(n: int) -> tuple[list[str], list[str]]:
        return read_running_task_log(fake_ti(cls.__name__, task_id=f"t{n}"), 1)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(read, range(READS)))

    assert results == [([f"read by {cls.__name__}"], [f"line for t{n} try 1"]) for n in range(READS)]
    assert fx.constructed.get(cls.__name__, 0) == constructed + READS
    left = new_children(before)
    assert not left, describe(left)
    assert not zombies()
