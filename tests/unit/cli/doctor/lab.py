"""A lab for the doctor's tests: real Manager servers (orphaned, or with a live parent) under a private TMPDIR."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import psutil
import pytest

from airflow_executor_logs.cli import main
from airflow_executor_logs.utils.processes import find_manager_processes, stop_processes
from airflow_executor_logs.utils.processes.state import INIT_NAMES
from tests.support.process_control import find_processes_with_env, stop_process_tree

WORKER_TITLE = "[ready] airflow api-server worker"

# Started with TMPDIR set to the test's directory, so the Manager's pymp-* socket lands there.
# argv: pid file, process title ("" for none), "orphan" (exit without shutting the Manager down)
# or "live" (stay alive as the Manager's parent), "ignore-term" to have the Manager ignore SIGTERM, and the
# start method of the Manager ("fork", or "forkserver": Python 3.14's default, a forkserver then starts it).
_HELPER = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys, time

    pid_file, title, mode, term, method = sys.argv[1:6]
    if term == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the forked Manager
    if title:
        import setproctitle

        setproctitle.setproctitle(title)
    manager = multiprocessing.get_context(method).Manager()
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
        self, title: str, mode: str, ignore_term: bool = False, method: str = "fork"
    ) -> tuple[subprocess.Popen[bytes], psutil.Process]:
        pid_file = self.tmpdir / f"manager-{len(self.helpers)}.pid"
        env = {**os.environ, "TMPDIR": str(self.tmpdir)}
        with open(self.tmpdir / f"helper-{len(self.helpers)}.log", "wb") as log:
            helper = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _HELPER,
                    str(pid_file),
                    title,
                    mode,
                    "ignore-term" if ignore_term else "-",
                    method,
                ],
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
        wait_listening(self.tmpdir, manager.pid)
        return helper, manager

    def orphan(self, title: str = "", ignore_term: bool = False, method: str = "fork") -> psutil.Process:
        """A real Manager server whose parent exited without shutting it down."""
        helper, manager = self._start_helper(title, "orphan", ignore_term, method)
        assert helper.wait(timeout=30) == 0
        ppid = manager.ppid()
        if ppid != 1 and psutil.Process(ppid).name() not in INIT_NAMES:
            pytest.skip(f"the orphan was adopted by subreaper {ppid}, which the doctor cannot tell from a parent")
        return manager

    def live(self, title: str = "", method: str = "fork") -> tuple[psutil.Process, psutil.Process]:
        """A Manager server and the (running) process that started it."""
        helper, manager = self._start_helper(title, "live", method=method)
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
        # And whatever else was started with our TMPDIR: a forkserver, a resource tracker.
        leftovers.extend(find_processes_with_env("TMPDIR", str(self.tmpdir)))
        stop_processes(leftovers, grace=0.0)  # by psutil handle: never a pid that now names another process
        for helper in self.helpers:
            stop_process_tree(helper, grace=2.0)  # a no-op once the helper was reaped
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def wait_listening(tmpdir: Path, pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while pid not in {found.pid for found in find_manager_processes(str(tmpdir))}:
        if time.monotonic() > deadline:
            pytest.fail(f"Manager {pid} never listened under {tmpdir}")
        time.sleep(0.05)


@contextlib.contextmanager
def manager_of_ours(tmpdir: Path) -> Iterator[psutil.Process]:
    """A Manager server that is a child of this (non-Airflow) test process, with its socket in ``tmpdir``."""
    socket_dir = tmpdir / "pymp-ours"
    socket_dir.mkdir()
    manager = SyncManager(address=str(socket_dir / "listener-ours"), ctx=multiprocessing.get_context("fork"))
    manager.start()
    process = psutil.Process(manager._process.pid)  # type: ignore[attr-defined]
    try:
        wait_listening(tmpdir, process.pid)
        yield process
    finally:
        with contextlib.suppress(Exception):
            manager.shutdown()
        stop_processes([manager._process], grace=0.0)  # type: ignore[attr-defined]  # joins it


def record_of(document: dict[str, Any], pid: int) -> dict[str, Any]:
    """The one record of ``pid`` in a doctor JSON document."""
    matches = [record for record in document["managers"] if record["pid"] == pid]
    assert len(matches) == 1, document
    return matches[0]
