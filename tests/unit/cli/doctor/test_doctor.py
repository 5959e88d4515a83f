"""The doctor command (``run``, ``airflow_command``) against real Manager servers: orphaned, child of Airflow, ours."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import psutil
import pytest

from airflow_executor_logs.cli import doctor
from airflow_executor_logs.cli.doctor.activation import Activation
from airflow_executor_logs.cli.doctor.classify import KIND_AIRFLOW, KIND_ORPHANED, KIND_OTHER, ManagerRecord
from airflow_executor_logs.cli.doctor.options import DEFAULT_GRACE, EXIT_INACTIVE, EXIT_OK, EXIT_ORPHANS
from airflow_executor_logs.cli.doctor.reap import REAPED, ReapResult
from airflow_executor_logs.utils.processes import is_gone
from tests.support.process_control import wait_gone
from tests.unit.cli.doctor.lab import WORKER_TITLE, Lab, manager_of_ours, record_of

# --------------------------------------------------------------------------------------------
# Real processes
# --------------------------------------------------------------------------------------------


def test_orphan_is_listed_in_the_table_and_exits_1(lab: Lab) -> None:
    orphan = lab.orphan()

    code, out = lab.doctor()

    assert code == 1, out
    header, row = out.splitlines()[:2]
    assert header.split() == ["PID", "PPID", "AGE", "RSS", "USS", "ORIGIN"]
    assert row.split()[0] == str(orphan.pid)
    assert "orphaned (ppid 1)" in row or "orphaned (adopted by" in row
    assert "MiB" in row
    assert "1 Manager server(s), 1 orphaned" in out
    assert not is_gone(orphan)  # reported, not touched


def test_orphan_in_json_says_what_it_was_forked_from(lab: Lab) -> None:
    orphan = lab.orphan(title=WORKER_TITLE)

    code, out = lab.doctor("--json")

    assert code == 1
    document = json.loads(out)
    record = record_of(document, orphan.pid)
    assert record["kind"] == KIND_ORPHANED
    assert record["orphaned"] is True
    assert record["forked_from"] == "airflow api-server worker"
    assert record["origin"].endswith("forked from airflow api-server worker")
    assert record["create_time"] == orphan.create_time()
    assert record["rss_bytes"] > 0
    assert record["memory_bytes"] == (record["uss_bytes"] or record["rss_bytes"])
    assert record["socket_path"].startswith(str(lab.tmpdir))
    assert record["reap"] is None
    assert document["summary"] == {
        "managers": 1,
        "hidden": 0,
        "orphans": 1,
        "orphan_memory_bytes": record["memory_bytes"],
        "reaped": 0,
        "freed_bytes": 0,
        "remaining_orphans": 1,
        "exit_code": 1,
    }


def test_a_forkserver_is_not_a_manager_and_its_manager_names_who_started_it(lab: Lab) -> None:
    """Under the forkserver start method (3.14's default) the forkserver listens on a pymp-* socket too."""
    parent, manager = lab.live(method="forkserver")
    forkserver = psutil.Process(manager.ppid())
    assert forkserver.ppid() == parent.pid

    code, out = lab.doctor("--json", "--all")

    assert code == 0, out
    document = json.loads(out)
    assert [record["pid"] for record in document["managers"]] == [manager.pid]
    record = record_of(document, manager.pid)
    assert record["kind"] == KIND_OTHER
    assert record["origin"] == (
        f"child of non-Airflow process {parent.pid} ({parent.name()}) through forkserver {forkserver.pid}"
    )


def test_a_forkserver_manager_that_lost_its_worker_is_reaped_with_its_resource_tracker(lab: Lab) -> None:
    orphan = lab.orphan(method="forkserver")
    trackers = [
        process
        for process in psutil.process_iter()
        if _env_of(process).get("TMPDIR") == str(lab.tmpdir) and "resource_tracker" in " ".join(process.cmdline())
    ]
    assert trackers, "the forkserver start method starts a resource tracker"

    code, out = lab.doctor("--json", "--reap", "--grace", "1")

    document = json.loads(out)
    assert record_of(document, orphan.pid)["kind"] == KIND_ORPHANED
    assert record_of(document, orphan.pid)["reap"]["outcome"] == REAPED
    assert code == 0, out
    assert not wait_gone([orphan, *trackers], timeout=30)


def _env_of(process: psutil.Process) -> dict[str, str]:
    try:
        return process.environ()
    except psutil.Error:
        return {}


def test_reap_terminates_the_orphan_and_reports_memory_freed(lab: Lab) -> None:
    orphan = lab.orphan()

    code, out = lab.doctor("--reap", "--grace", "5")

    assert code == 0, out
    assert not wait_gone([orphan], 5.0)
    assert f"Reaped {orphan.pid} (SIGTERM), freed " in out
    assert "Reaped 1 of 1 orphan(s), freed " in out
    assert "freed 0 B" not in out
    code, out = lab.doctor()
    assert code == 0
    assert "0 Manager server(s), 0 orphaned" in out


def test_reap_json_reports_freed_bytes(lab: Lab) -> None:
    orphans = [lab.orphan(), lab.orphan(title=WORKER_TITLE)]

    code, out = lab.doctor("--reap", "--json")

    assert code == 0
    document = json.loads(out)
    freed = 0
    for orphan in orphans:
        record = record_of(document, orphan.pid)
        assert record["reap"] == {"outcome": "reaped", "detail": "SIGTERM", "freed_bytes": record["memory_bytes"]}
        assert record["memory_bytes"] > 0
        freed += record["memory_bytes"]
        assert is_gone(orphan)
    assert document["summary"]["reaped"] == 2
    assert document["summary"]["freed_bytes"] == freed
    assert document["summary"]["remaining_orphans"] == 0
    assert document["summary"]["exit_code"] == 0


def test_managers_with_live_parents_are_never_reaped(lab: Lab) -> None:
    orphan = lab.orphan()
    worker, workers_manager = lab.live(title=WORKER_TITLE)
    with manager_of_ours(lab.tmpdir) as ours:
        code, out = lab.doctor("--reap", "--all", "--json", "--grace", "1")

        assert code == 0
        document = json.loads(out)
        assert record_of(document, orphan.pid)["reap"]["outcome"] == "reaped"
        airflow_child = record_of(document, workers_manager.pid)
        assert airflow_child["kind"] == KIND_AIRFLOW
        assert airflow_child["origin"] == f"child of airflow api-server worker {worker.pid}"
        assert airflow_child["reap"] is None
        our_child = record_of(document, ours.pid)
        assert our_child["kind"] == KIND_OTHER
        assert our_child["origin"].startswith(f"child of non-Airflow process {os.getpid()} ")
        assert our_child["reap"] is None
        assert is_gone(orphan)
        assert not is_gone(workers_manager)
        assert not is_gone(ours)

        # Without --all, Managers of non-Airflow processes are counted but not listed.
        code, out = lab.doctor()
        assert code == 0
        assert str(workers_manager.pid) in out
        assert f"child of non-Airflow process {os.getpid()}" not in out
        assert "2 Manager server(s)" not in out
        assert "1 Manager server(s), 0 orphaned (0 B); 1 of non-Airflow processes not shown (--all)." in out
    assert not is_gone(workers_manager)


def test_no_orphans_exits_0(lab: Lab) -> None:
    _, manager = lab.live(title=WORKER_TITLE)

    code, out = lab.doctor("--reap")

    assert code == 0
    assert "1 Manager server(s), 0 orphaned" in out
    assert "Reaped 0 of 0 orphan(s), freed 0 B." in out
    assert not is_gone(manager)


def test_module_entry_point_in_a_subprocess(lab: Lab) -> None:
    orphan = lab.orphan()

    result = subprocess.run(
        [sys.executable, "-m", "airflow_executor_logs", "doctor", "--json", "--tmpdir", str(lab.tmpdir)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stderr
    assert record_of(json.loads(result.stdout), orphan.pid)["kind"] == KIND_ORPHANED


def _core_adds_provider_cli() -> bool:
    from airflow_executor_logs import version_compat

    return version_compat.supports_provider_cli()


@pytest.mark.slow
@pytest.mark.skipif(
    not _core_adds_provider_cli(), reason="this core ignores a provider's cli key (3.2 and later add it)"
)
def test_airflow_subcommand(lab: Lab) -> None:
    providers = {entry_point.value for entry_point in entry_points(group="apache_airflow_provider")}
    if "airflow_executor_logs.provider:get_provider_info" not in providers:
        pytest.skip("the apache_airflow_provider entry point is not installed")
    airflow = Path(sys.executable).with_name("airflow")
    if not airflow.exists():
        pytest.skip("no airflow console script next to this interpreter")
    orphan = lab.orphan()

    result = subprocess.run(
        [str(airflow), "executor-logs", "doctor", "--json", "--tmpdir", str(lab.tmpdir)],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 1, result.stderr
    assert record_of(json.loads(result.stdout), orphan.pid)["kind"] == KIND_ORPHANED


# --------------------------------------------------------------------------------------------
# run() on given records and activation
# --------------------------------------------------------------------------------------------

ACTIVE = Activation("3.2.1", "x.Handler", True, "_get_executor_get_task_log")


def _given(kind: str, pid: int) -> ManagerRecord:
    return ManagerRecord(
        pid=pid,
        ppid=1 if kind == KIND_ORPHANED else 50,
        create_time=time.time(),
        rss=2048,
        uss=1024,
        cmdline=(),
        socket_path=f"/tmp/pymp-{pid}/listener-{pid}",
        orphan_reason="ppid 1" if kind == KIND_ORPHANED else None,
        kind=kind,
        origin=kind,
    )


@pytest.fixture
def given(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What ``run`` finds (``records``), the activation it reports, and the records it is asked to reap."""
    state: dict[str, Any] = {
        "records": [_given(KIND_ORPHANED, 1), _given(KIND_AIRFLOW, 2), _given(KIND_OTHER, 3)],
        "activation": ACTIVE,
        "reaped": [],
    }

    def fake_reap(records: list[ManagerRecord], grace: float) -> list[ReapResult]:
        state["reaped"].append(([record.pid for record in records], grace))
        return [ReapResult(record.pid, REAPED, "SIGTERM", record.memory) for record in records if record.orphaned]

    monkeypatch.setattr(doctor, "scan", lambda tmpdir: state["records"])
    monkeypatch.setattr(doctor, "find_helpers", lambda tmpdir: [])  # never this host's: run() could reap them
    monkeypatch.setattr(doctor, "check_activation", lambda: state["activation"])
    monkeypatch.setattr(doctor, "reap", fake_reap)
    return state


def _run(**args: Any) -> tuple[int, str]:
    out = io.StringIO()
    return doctor.run(argparse.Namespace(**args), out), out.getvalue()


def test_run_hides_managers_of_other_processes_unless_all(given: dict[str, Any]) -> None:
    code, out = _run(json=True)
    document = json.loads(out)
    assert ([record["pid"] for record in document["managers"]], document["summary"]["hidden"]) == ([1, 2], 1)
    assert document["activation"] == ACTIVE.as_dict()
    assert code == EXIT_ORPHANS
    code, out = _run(json=True, all=True)
    assert [record["pid"] for record in json.loads(out)["managers"]] == [1, 2, 3]


def test_run_reaps_only_when_asked_with_the_grace_given(given: dict[str, Any]) -> None:
    assert _run()[0] == EXIT_ORPHANS
    assert given["reaped"] == []
    code, out = _run(reap=True, grace=1.5)
    assert given["reaped"] == [([1, 2], 1.5)]  # the shown records; reap() itself keeps to the orphans
    assert code == EXIT_OK
    assert out.splitlines()[-2:] == [
        "Reaped 1 of 1 orphan(s), freed 1.0 KiB.",
        ACTIVE.describe(),
    ]
    _run(reap=True)
    assert given["reaped"][-1][1] == DEFAULT_GRACE


def test_run_exit_codes(given: dict[str, Any]) -> None:
    given["activation"] = Activation("9.0.0", "x.Handler", True, None)
    assert _run()[0] == EXIT_ORPHANS  # orphans left say more than an inactive package
    given["records"] = [_given(KIND_AIRFLOW, 2)]
    assert _run()[0] == EXIT_INACTIVE
    given["activation"] = Activation(None, None, False, None, "Airflow cannot be imported")
    assert _run()[0] == EXIT_OK  # cannot tell: not reported as inactive
    given["activation"] = ACTIVE
    assert _run()[0] == EXIT_OK


def test_airflow_command_exits_with_the_code(given: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        doctor.airflow_command(argparse.Namespace(json=False))
    assert exited.value.code == EXIT_ORPHANS
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "Run with --reap to terminate the orphans.",
        ACTIVE.describe(),
    ]
