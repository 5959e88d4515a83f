"""``reap``: only orphans are signalled, each checked again right before (pid reuse, socket), SIGKILL after grace."""

from __future__ import annotations

import dataclasses
import signal
import subprocess

import psutil
import pytest

from airflow_executor_logs.cli.doctor.classify import KIND_AIRFLOW, KIND_ORPHANED, KIND_OTHER, ManagerRecord, scan
from airflow_executor_logs.cli.doctor.reap import FAILED, GONE, REAPED, SKIPPED, ReapResult, _result, reap
from airflow_executor_logs.utils.processes import ManagerProcess, Outcome, StopResult, is_gone
from tests.unit.cli.doctor.lab import Lab


def test_reap_checks_identity_again_before_signalling(lab: Lab) -> None:
    orphan = lab.orphan()
    (record,) = scan(str(lab.tmpdir))
    assert record.pid == orphan.pid
    assert isinstance(record, ManagerProcess)  # one record: the doctor's adds only its verdict
    assert record.orphan_reason is not None

    impostor = dataclasses.replace(record, create_time=record.create_time - 3600)
    (result,) = reap([impostor], grace=0.5)
    assert (result.outcome, result.detail) == ("skipped", "pid reused by another process")

    moved = dataclasses.replace(record, socket_path=record.socket_path + "-elsewhere")
    (result,) = reap([moved], grace=0.5)
    assert (result.outcome, result.detail) == ("skipped", "no longer a Manager server")

    assert reap([dataclasses.replace(record, kind=KIND_OTHER)], grace=0.5) == []
    assert reap([dataclasses.replace(record, kind=KIND_AIRFLOW)], grace=0.5) == []
    assert not is_gone(orphan)


def test_reap_uses_sigkill_when_sigterm_is_ignored(lab: Lab) -> None:
    orphan = lab.orphan(ignore_term=True)
    (record,) = scan(str(lab.tmpdir))

    (result,) = reap([record], grace=0.5)

    assert (result.outcome, result.detail) == ("reaped", "SIGKILL")
    assert result.freed == record.memory
    assert is_gone(orphan)


_ME = psutil.Process()


def _record_of(proc: psutil.Process, kind: str = KIND_ORPHANED) -> ManagerRecord:
    return ManagerRecord(
        pid=proc.pid,
        ppid=proc.ppid(),
        create_time=proc.create_time(),
        rss=1000,
        uss=600,
        cmdline=(),
        socket_path="/tmp/pymp-x/listener-y",
        orphan_reason="ppid 1",
        kind=kind,
        origin="orphaned (ppid 1)",
    )


def test_a_record_whose_process_exited_is_gone() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        record = _record_of(psutil.Process(proc.pid))
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert reap([record], grace=0.1) == [ReapResult(record.pid, GONE, "already exited")]


def test_a_process_whose_parent_lives_is_no_longer_orphaned_and_skipped() -> None:
    me = psutil.Process()
    record = _record_of(me)  # recorded as an orphan, but its parent is alive
    (result,) = reap([record], grace=0.1)
    assert result == ReapResult(me.pid, SKIPPED, f"no longer orphaned (ppid {me.ppid()})")
    assert result.remains


@pytest.mark.parametrize(
    ("stopped", "expected"),
    [
        (StopResult(_ME, Outcome.STOPPED, signal.SIGTERM), ReapResult(7, REAPED, "SIGTERM", 600)),
        (StopResult(_ME, Outcome.STOPPED, signal.SIGKILL), ReapResult(7, REAPED, "SIGKILL", 600)),
        (StopResult(_ME, Outcome.GONE, None), ReapResult(7, GONE, "exited before it was signalled")),
        (StopResult(_ME, Outcome.DENIED, None), ReapResult(7, FAILED, "permission denied")),
        (StopResult(_ME, Outcome.DENIED, signal.SIGTERM), ReapResult(7, FAILED, "permission denied for SIGKILL")),
        (StopResult(_ME, Outcome.SKIPPED, None), ReapResult(7, SKIPPED, "not signalled")),
        (StopResult(_ME, Outcome.ALIVE, signal.SIGKILL), ReapResult(7, FAILED, "still running after SIGKILL")),
    ],
)
def test_what_stopping_did_becomes_a_reap_result(stopped: StopResult[psutil.Process], expected: ReapResult) -> None:
    record = dataclasses.replace(_record_of(_ME), pid=7)
    assert _result(record, stopped) == expected


def test_only_skipped_and_failed_orphans_remain() -> None:
    assert [ReapResult(1, outcome, "").remains for outcome in (REAPED, GONE, SKIPPED, FAILED)] == [
        False,
        False,
        True,
        True,
    ]
