"""``airflow-executor-logs doctor`` against real Manager servers: orphaned, child of Airflow, child of us."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import psutil
import pytest

from airflow_executor_logs.cli import main
from airflow_executor_logs.cli.doctor.classify import KIND_AIRFLOW, KIND_ORPHANED, KIND_OTHER, airflow_role, scan
from airflow_executor_logs.cli.doctor.output import format_age, format_bytes
from airflow_executor_logs.cli.doctor.reap import reap
from airflow_executor_logs.utils.processes import (
    INIT_NAMES,
    ManagerProcess,
    find_manager_processes,
    is_gone,
    stop_process_tree,
    stop_processes,
    wait_gone,
)

WORKER_TITLE = "[ready] airflow api-server worker"

# Started with TMPDIR set to the test's directory, so the Manager's pymp-* socket lands there.
# argv: pid file, process title ("" for none), "orphan" (exit without shutting the Manager down)
# or "live" (stay alive as the Manager's parent), and "ignore-term" to have the Manager ignore SIGTERM.
_HELPER = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys, time

    pid_file, title, mode, term = sys.argv[1:5]
    if term == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the forked Manager
    if title:
        import setproctitle

        setproctitle.setproctitle(title)
    manager = multiprocessing.get_context("fork").Manager()
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(manager._process.pid))
    os.replace(pid_file + ".tmp", pid_file)
    if mode == "orphan":
        os._exit(0)  # no shutdown, no finalizers: the Manager outlives its parent
    time.sleep(600)
    """
)


@dataclasses.dataclass
class Lab:
    """A private TMPDIR, helper processes in it, and their cleanup by pid."""

    tmpdir: Path
    helpers: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)
    managers: list[psutil.Process] = dataclasses.field(default_factory=list)

    def _start_helper(
        self, title: str, mode: str, ignore_term: bool = False
    ) -> tuple[subprocess.Popen[bytes], psutil.Process]:
        pid_file = self.tmpdir / f"manager-{len(self.helpers)}.pid"
        env = {**os.environ, "TMPDIR": str(self.tmpdir)}
        with open(self.tmpdir / f"helper-{len(self.helpers)}.log", "wb") as log:
            helper = subprocess.Popen(
                [sys.executable, "-c", _HELPER, str(pid_file), title, mode, "ignore-term" if ignore_term else "-"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.helpers.append(helper)
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            if helper.poll() is not None and not pid_file.exists():
                pytest.fail(f"helper exited with {helper.returncode} before starting a Manager")
            if time.monotonic() > deadline:
                pytest.fail("helper did not start a Manager within 60 s")
            time.sleep(0.02)
        manager = psutil.Process(int(pid_file.read_text()))
        self.managers.append(manager)
        _wait_listening(self.tmpdir, manager.pid)
        return helper, manager

    def orphan(self, title: str = "", ignore_term: bool = False) -> psutil.Process:
        """A real Manager server whose parent exited without shutting it down."""
        helper, manager = self._start_helper(title, "orphan", ignore_term)
        assert helper.wait(timeout=30) == 0
        ppid = manager.ppid()
        if ppid != 1 and psutil.Process(ppid).name() not in INIT_NAMES:
            pytest.skip(f"the orphan was adopted by subreaper {ppid}, which the doctor cannot tell from a parent")
        return manager

    def live(self, title: str = "") -> tuple[psutil.Process, psutil.Process]:
        """A Manager server and its (running) parent."""
        helper, manager = self._start_helper(title, "live")
        return psutil.Process(helper.pid), manager

    def doctor(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["doctor", "--tmpdir", str(self.tmpdir), *args])
        return code, out.getvalue()

    def cleanup(self) -> None:
        """Kill every Manager started here (tracked, or listening under our TMPDIR), then the helpers."""
        leftovers = [*self.managers]
        for found in find_manager_processes(str(self.tmpdir)):
            with contextlib.suppress(psutil.Error):
                leftovers.append(psutil.Process(found.pid))
        stop_processes(leftovers, grace=0.0)  # by psutil handle: never a pid that now names another process
        for helper in self.helpers:
            stop_process_tree(helper, grace=2.0)  # a no-op once the helper was reaped
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def _wait_listening(tmpdir: Path, pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while pid not in {found.pid for found in find_manager_processes(str(tmpdir))}:
        if time.monotonic() > deadline:
            pytest.fail(f"Manager {pid} never listened under {tmpdir}")
        time.sleep(0.05)


@pytest.fixture
def lab() -> Iterator[Lab]:
    # Short path: unix socket paths are limited to 107 bytes.
    lab = Lab(Path(tempfile.mkdtemp(prefix="ael-doc-", dir="/tmp")))
    try:
        yield lab
    finally:
        lab.cleanup()


@contextlib.contextmanager
def manager_of_ours(tmpdir: Path) -> Iterator[psutil.Process]:
    """A Manager server that is a child of this (non-Airflow) test process, with its socket in ``tmpdir``."""
    socket_dir = tmpdir / "pymp-ours"
    socket_dir.mkdir()
    manager = SyncManager(address=str(socket_dir / "listener-ours"), ctx=multiprocessing.get_context("fork"))
    manager.start()
    process = psutil.Process(manager._process.pid)  # type: ignore[attr-defined]
    try:
        _wait_listening(tmpdir, process.pid)
        yield process
    finally:
        with contextlib.suppress(Exception):
            manager.shutdown()
        stop_processes([manager._process], grace=0.0)  # type: ignore[attr-defined]  # joins it


def _record(document: dict[str, Any], pid: int) -> dict[str, Any]:
    matches = [record for record in document["managers"] if record["pid"] == pid]
    assert len(matches) == 1, document
    return matches[0]


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
    record = _record(document, orphan.pid)
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
        record = _record(document, orphan.pid)
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
        assert _record(document, orphan.pid)["reap"]["outcome"] == "reaped"
        airflow_child = _record(document, workers_manager.pid)
        assert airflow_child["kind"] == KIND_AIRFLOW
        assert airflow_child["origin"] == f"child of airflow api-server worker {worker.pid}"
        assert airflow_child["reap"] is None
        our_child = _record(document, ours.pid)
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
    assert _record(json.loads(result.stdout), orphan.pid)["kind"] == KIND_ORPHANED


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
    assert _record(json.loads(result.stdout), orphan.pid)["kind"] == KIND_ORPHANED


# --------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["doctor", "--grace", "-1"], 2),
        (["doctor", "--grace", "soon"], 2),
        (["doctor", "--bogus"], 2),
        (["nope"], 2),
        ([], 2),
        (["doctor", "--help"], 0),
    ],
)
def test_usage(argv: list[str], expected: int) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == expected


@pytest.mark.parametrize(
    ("cmdline", "parent", "expected"),
    [
        (["[ready] airflow api-server worker"], None, "airflow api-server worker"),
        (["gunicorn: worker [airflow-webserver]"], None, "airflow api-server worker"),
        (["gunicorn: master [gunicorn]"], None, "airflow api-server"),
        (["airflow api_server -- host:0.0.0.0 port:8080"], None, "airflow api-server"),
        (["/venv/bin/python", "/venv/bin/airflow", "api-server", "-p", "8080"], None, "airflow api-server"),
        (["python3", "-m", "airflow", "scheduler"], None, "airflow scheduler"),
        (["/usr/local/bin/airflow"], None, "airflow"),
        (
            [
                "python",
                "-c",
                "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)",
                "--multiprocessing-fork",
            ],
            ["airflow api_server -- host:0.0.0.0 port:8080"],
            "airflow api-server worker",
        ),
        (["python", "-c", "from multiprocessing.spawn import spawn_main"], ["bash"], None),
        (["uvicorn", "airflow.api_fastapi.main:app"], None, "airflow api-server"),
        (["ls", "/opt/airflow"], None, None),
        (["/usr/bin/python3", "-m", "pytest"], None, None),
        ([], None, None),
    ],
)
def test_airflow_role(cmdline: list[str], parent: list[str] | None, expected: str | None) -> None:
    assert airflow_role(cmdline, parent) == expected


def test_human_units() -> None:
    assert format_bytes(None) == "-"
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(110 * 1024 * 1024 + 200 * 1024) == "110.2 MiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"
    assert [format_age(s) for s in (0, 42, 312, 3 * 3600 + 240, 2 * 86400 + 3 * 3600)] == [
        "0s",
        "42s",
        "5m12s",
        "3h04m",
        "2d03h",
    ]
