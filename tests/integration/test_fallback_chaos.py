"""
The fallback helper under faults, through the real pipeline, counting real processes with psutil.

Each read answers within ``fallback_timeout`` + 10 %, whatever the helper does (a preload that hangs, a
SIGSTOP, a SIGKILL), and no process outlives what it served. The figures the tests measure are printed
(``-s`` shows them).
"""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.executors.short_lived import PRELOAD
from airflow_executor_logs.utils.processes import is_gone, is_manager
from airflow_executor_logs.utils.zygote import Zygote, is_helper_cmdline
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.processes import children_stopped_on_exit, stopped_if_left
from tests.support.task_instances import fake_ti

#: Executors whose module misbehaves in the helper only (its command line ends with the helper's mark).
CHAOS_MODULE = """
import os, sys, threading, time
from airflow_executor_logs_testing.executors import CountingExecutor, ManagerExecutor

IN_HELPER = sys.argv[-1] == "airflow-executor-logs-zygote"
if IN_HELPER and "{name}" == "chaos_hangs":
    open(os.environ["CHAOS_DIR"] + "/importing", "w").close()
    time.sleep(3600)
if IN_HELPER and "{name}" == "chaos_slow":
    time.sleep(float(os.environ.get("CHAOS_IMPORT_SECONDS", "0")))
if "{name}" == "chaos_threads":
    with open(os.environ["CHAOS_DIR"] + "/imported_by", "a") as out:
        out.write(f"{{os.getpid()}}\\n")
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


class {cls}(CountingExecutor):
    pass


class Slow{cls}(ManagerExecutor):
    def get_task_log(self, ti, try_number):
        time.sleep(float(os.environ.get("CHAOS_READ_SECONDS", "2")))
        return super().get_task_log(ti, try_number)
"""
MODULES = {
    "chaos_hangs": "HangsOnImportExecutor",
    "chaos_threads": "ThreadsOnImportExecutor",
    "chaos_plain": "QuietExecutor",
    "chaos_slow": "SlowToImportExecutor",
}
DEADLINE = 4.0
#: The running test's own helper (:func:`chaos` sets it): every pipeline of that test holds it.
_zygote = Zygote()


@pytest.fixture
def chaos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The chaos modules importable here and in a fresh helper (this test's own), every process stopped after."""
    for name, cls in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(CHAOS_MODULE.format(name=name, cls=cls)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CHAOS_DIR", str(tmp_path))
    monkeypatch.setenv(fx.MARKER_ENV, uuid.uuid4().hex)
    fresh = Zygote()
    monkeypatch.setattr(sys.modules[__name__], "_zygote", fresh)
    setting = ",".join([fx.all_executors_setting(), *(f"{n}.{c}" for n, c in MODULES.items())])
    setting += "," + ",".join(f"{n}.Slow{c}" for n, c in MODULES.items())
    with conf_vars({("core", "executor"): setting}), children_stopped_on_exit():
        try:
            # Its start imports Airflow: not the reads' time.
            fresh.call(os.getpid, deadline=Deadline(300), preload=PRELOAD)
            yield tmp_path
        finally:
            fresh.stop(timeout=5)
            sys.modules.pop("chaos_hangs", None)


def _pipeline(deadline: float = DEADLINE, **settings: Any) -> ExecutorLogPipeline:
    return ExecutorLogPipeline(
        settings=Settings(fallback_timeout=deadline, answer_ttl=1e-6, **settings), helper=_zygote
    )


def _timed_read(pipeline: ExecutorLogPipeline, executor: str, task_id: str = "task") -> tuple[float, str]:
    started = time.monotonic()
    messages, logs = pipeline.read(fake_ti(executor, task_id=task_id), 2)
    return time.monotonic() - started, "\n".join([*messages, *logs])


def _marked_alive() -> list[psutil.Process]:
    marker = os.environ[fx.MARKER_ENV]
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(fx.MARKER_ENV) == marker and not is_gone(proc) and not _is_helper(proc):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _nothing_left() -> None:
    """No process this test's reads started is alive (the live helper aside); the count is printed."""
    left = _marked_alive()
    print(f"processes left: {len(left)}")
    assert not left, left


def _is_helper(proc: psutil.Process) -> bool:
    return is_helper_cmdline(proc.cmdline())


def _until(predicate: Any, timeout: float) -> float:
    """Seconds until ``predicate()`` holds; fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - started


def _helper() -> psutil.Process:
    pid = _zygote.pid
    assert pid is not None
    return psutil.Process(pid)


def test_a_preload_that_hangs_costs_one_deadline_and_the_helper(chaos: Path) -> None:
    pipeline = _pipeline()
    assert "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor")[1]  # the helper is up
    stuck = _helper()
    took, text = _timed_read(pipeline, "HangsOnImportExecutor")
    print(f"\nhanging preload: answered in {took:.2f} s (deadline {DEADLINE:g} s)")
    assert took <= DEADLINE * 1.1
    assert "did not return logs within" in text
    assert (chaos / "importing").exists()
    gone = _until(lambda: is_gone(stuck), 5)
    print(f"the stuck helper gone {gone:.2f} s after that answer")
    # A new helper serves the next read (its start imports Airflow again: a longer deadline).
    assert "read by ManagerExecutor" in _timed_read(_pipeline(120.0), "ManagerExecutor")[1]
    assert _helper().pid != stuck.pid
    replacement = _helper()
    took, text = _timed_read(pipeline, "HangsOnImportExecutor")  # not preloaded again: only its own child hangs
    print(f"the next read of it answered in {took:.2f} s")
    assert took <= DEADLINE * 1.1
    assert _helper().pid == replacement.pid
    _nothing_left()


def test_a_sigstopped_helper_is_replaced_and_no_read_waits_past_its_deadline(chaos: Path) -> None:
    pipeline = _pipeline()
    assert "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor")[1]
    stopped = _helper()
    stopped.suspend()
    try:
        with ThreadPoolExecutor(6) as pool:
            times = list(pool.map(lambda n: _timed_read(pipeline, "ManagerExecutor", f"t{n}")[0], range(12)))
        gone = _until(lambda: is_gone(stopped), 5)
    finally:
        stopped_if_left(stopped.pid)
    print(f"\nSIGSTOPped helper: 12 reads answered in {min(times):.2f}-{max(times):.2f} s (deadline {DEADLINE:g} s)")
    print(f"the stopped helper gone {gone:.2f} s after the last answer")
    assert max(times) <= DEADLINE * 1.1
    assert "read by ManagerExecutor" in _timed_read(_pipeline(120.0), "ManagerExecutor")[1]
    _nothing_left()


def test_a_replacement_helper_is_not_judged_stuck_while_it_starts(chaos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    After a stuck helper is killed, its replacement's start (a new interpreter importing Airflow and an
    executor module that takes 5 s) outlasts several short deadlines: each read answers at its deadline,
    the replacement is kept, and once it is up the reads get lines in time.
    """
    deadline = 2.0
    pipeline = _pipeline(deadline)
    monkeypatch.setenv("CHAOS_IMPORT_SECONDS", "5")
    assert "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor")[1]
    stuck = _helper()
    stuck.suspend()
    try:
        took, text = _timed_read(pipeline, "ManagerExecutor", "stuck")
        assert "did not return logs within" in text
        _until(lambda: is_gone(stuck), 5)
    finally:
        stopped_if_left(stuck.pid)
    times: list[float] = []
    helpers: set[int] = set()
    text = ""
    while "read by SlowToImportExecutor" not in text:
        assert len(times) < 30, f"no lines within 30 reads; helpers {helpers}"
        took, text = _timed_read(pipeline, "SlowToImportExecutor", f"t{len(times)}")
        times.append(took)
        if _zygote.pid is not None:
            helpers.add(_zygote.pid)
        assert "read by SlowToImportExecutor" in text or "did not return logs within" in text, text
    print(
        f"\ncold start after a replacement: {len(times)} reads answered in {min(times):.2f}-{max(times):.2f} s "
        f"(deadline {deadline:g} s) until lines came; {len(helpers)} helper(s) served them"
    )
    assert max(times) <= deadline * 1.1
    assert len(times) > 1  # the start outlasted a deadline
    assert len(helpers) == 1  # not replaced while it started
    _nothing_left()


def _read_child_and_manager(helper: psutil.Process) -> tuple[psutil.Process, psutil.Process]:
    found: list[tuple[psutil.Process, psutil.Process]] = []

    def started() -> bool:
        for child in helper.children():
            try:
                managers = [proc for proc in child.children(recursive=True) if is_manager(proc)]
            except psutil.NoSuchProcess:  # the child of an earlier read, gone meanwhile: not the one looked for
                continue
            if managers:
                found.append((child, managers[0]))
                return True
        return False

    _until(started, 30)
    return found[0]


def test_a_helper_killed_mid_read_answers_that_read_and_leaves_nothing(chaos: Path) -> None:
    pipeline = _pipeline(20.0)
    assert "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor")[1]
    helper = _helper()
    with ThreadPoolExecutor(1) as pool:
        read = pool.submit(_timed_read, pipeline, "GetLogHangsExecutor")
        _read_child_and_manager(helper)
        helper.kill()
        took, text = read.result(30)
    print(f"\nhelper SIGKILLed mid-read: that read answered {took:.2f} s after it started")
    assert "helper process that forked this read exited during it" in text, text
    assert "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor")[1]
    left = _marked_alive()
    print(f"processes left: {len(left)}")
    assert not left


def test_an_oom_killed_read_childs_manager_is_stopped_within_2_s_with_traffic_going_on(chaos: Path) -> None:
    pipeline = _pipeline(20.0)
    assert "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor")[1]
    helper = _helper()
    stop_traffic = threading.Event()

    def traffic() -> int:
        served = 0
        while not stop_traffic.is_set():
            served += "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor", f"t{served}")[1]
        return served

    with ThreadPoolExecutor(2) as pool:
        read = pool.submit(_timed_read, pipeline, "GetLogHangsExecutor")
        child, manager = _read_child_and_manager(helper)
        busy = pool.submit(traffic)
        time.sleep(0.5)
        child.kill()
        gone_after = _until(lambda: is_gone(manager), 10)
        _took, text = read.result(30)
        stop_traffic.set()
        served = busy.result(60)
    print(f"\nOOM-killed read child: its Manager gone {gone_after:.2f} s later; {served} reads served meanwhile")
    assert gone_after <= 2.0
    assert "died without answering" in text, text
    assert served > 0
    _nothing_left()


def test_an_executor_that_starts_a_thread_at_import_refuses_that_read_alone_and_is_dropped_for_good(
    chaos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = _pipeline(30.0)
    monkeypatch.setenv("CHAOS_READ_SECONDS", "3")
    assert "read by ManagerExecutor" in _timed_read(pipeline, "ManagerExecutor")[1]
    first = _helper()
    with ThreadPoolExecutor(2) as pool:
        concurrent = pool.submit(_timed_read, pipeline, "SlowQuietExecutor")
        time.sleep(0.5)
        started = time.monotonic()
        messages, logs = pipeline.read(fake_ti("ThreadsOnImportExecutor"), 2)
        took = time.monotonic() - started
        other = concurrent.result(60)
    print(f"\nthreaded preload: that read refused in {took:.2f} s; the concurrent read answered in {other[0]:.2f} s")
    # That read alone is refused, with one line naming the module and why (and no lines of it).
    problem = [line for line in "\n".join(logs).splitlines() if "chaos_threads" in line]
    assert len(problem) == 1, logs
    assert "chaos_threads starts a thread at import: read refused" in problem[0], problem
    assert "retry in" in problem[0], problem
    assert not any("read by ThreadsOnImportExecutor" in chunk for chunk in logs), logs
    assert any("no longer preloaded" in message for message in messages), messages
    assert took <= 30.0
    assert "read by SlowQuietExecutor" in other[1], other[1]  # not stopped with the helper it ran in
    importers = {int(pid) for pid in (chaos / "imported_by").read_text().split()}
    assert first.pid in importers
    for n in range(2):  # later reads of it work, in a helper that never imported it
        assert "read by ThreadsOnImportExecutor" in _timed_read(pipeline, "ThreadsOnImportExecutor", f"t{n}")[1]
    assert _helper().pid not in importers
    _nothing_left()


def test_200_concurrent_reads_of_50_tasks_answer_in_time_and_leave_the_worker_responsive(chaos: Path) -> None:
    """
    40 request threads (AnyIO's default) read 50 tasks 200 times at once. Each read answers within its
    deadline, with lines or the bulkhead's line; meanwhile a read that builds nothing (the other endpoints'
    work in this worker) keeps answering: p95 <= 250 ms.
    """
    deadline = 20.0
    pipeline = _pipeline(deadline)
    stop_probe = threading.Event()
    probe_times: list[float] = []

    pipeline.read(fake_ti("PlainExecutor", task_id="probe"), 1)  # resolved once before: the probe times the answer
    helper = _helper()
    building: list[int] = []

    def probe() -> None:
        while not stop_probe.is_set():
            started = time.monotonic()
            pipeline.read(fake_ti("PlainExecutor", task_id="probe"), 1)  # builds nothing
            probe_times.append(time.monotonic() - started)
            with contextlib.suppress(psutil.Error):
                # the read children (one per build), not those already done and not reaped yet
                building.append(sum(child.status() != psutil.STATUS_ZOMBIE for child in helper.children()))
            time.sleep(0.01)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(lambda n: _timed_read(pipeline, "ManagerExecutor", f"t{n % 50}"), range(200)))
    stop_probe.set()
    prober.join(10)
    times = sorted(took for took, _ in results)
    served = sum("read by ManagerExecutor" in text for _, text in results)
    busy = sum("max_concurrent_fallback_reads" in text for _, text in results)
    p95 = sorted(probe_times)[int(len(probe_times) * 0.95)]
    print(
        f"\n200 reads of 50 tasks: {served} with lines, {busy} busy, answered in {times[0]:.2f}-{times[-1]:.2f} s "
        f"(p50 {times[100]:.2f} s); other work p95 {p95 * 1000:.0f} ms over {len(probe_times)} probes; "
        f"at most {max(building)} builds at once"
    )
    assert max(building) <= Settings().max_concurrent_fallback_reads
    assert served + busy == 200
    assert times[-1] <= deadline * 1.1
    assert p95 <= 0.25
    _nothing_left()
