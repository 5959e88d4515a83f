"""The doctor and the short-lived executor helpers: a live one is listed with its worker, an orphaned one reaped."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from airflow_executor_logs.cli import main
from airflow_executor_logs.cli.doctor.helpers import find_helpers
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.processes import is_gone, stop_processes
from airflow_executor_logs.utils.zygote import HELPER_MARK, Zygote

#: A stand-in for a helper whose worker is gone: its command line ends with the mark, it runs a grandchild.
_ORPHAN = """
import subprocess, sys, time
subprocess.Popen(["sleep", "600"])
time.sleep(600)
"""


@pytest.fixture
def tmpdir_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="ael-helpers-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(directory))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _doctor(directory: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["doctor", "--tmpdir", str(directory), *args])
    return code, out.getvalue()


def test_a_live_helper_is_listed_with_its_worker_and_is_no_orphan(tmpdir_env: Path) -> None:
    zygote = Zygote()
    try:
        zygote.call(os.getpid, deadline=Deadline(60))
        code, out = _doctor(tmpdir_env)
        assert f"{zygote.pid}  ppid {os.getpid()}" in out
        assert f"helper of {psutil.Process().name()} {os.getpid()}" in out
        assert "1 helper(s), 0 orphaned." in out
        assert code != 1
    finally:
        zygote.stop()


@pytest.fixture
def orphaned_helper(tmpdir_env: Path) -> Iterator[psutil.Process]:
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {_ORPHAN!r}, "
            f"{HELPER_MARK!r}], start_new_session=True)",
        ],
    )
    launcher.wait(30)
    give_up = time.monotonic() + 30
    while not (found := [r for r in find_helpers(str(tmpdir_env)) if r.orphaned]):
        assert time.monotonic() < give_up, "the orphaned helper never showed up"
        time.sleep(0.05)
    helper = psutil.Process(found[0].pid)
    while not helper.children():
        assert time.monotonic() < give_up
        time.sleep(0.05)
    tree = [helper, *helper.children(recursive=True)]
    yield helper
    stop_processes(tree, grace=0.0)


def test_an_orphaned_helper_is_reported_and_reaped_with_what_it_runs(
    tmpdir_env: Path, orphaned_helper: psutil.Process
) -> None:
    grandchild = orphaned_helper.children()[0]
    code, out = _doctor(tmpdir_env, "--json")
    assert code == 1
    [record] = json.loads(out)["helpers"]["records"]
    assert (record["pid"], record["orphaned"]) == (orphaned_helper.pid, True)
    assert record["origin"].startswith("orphaned (")
    assert not is_gone(orphaned_helper)  # reported, not touched

    code, out = _doctor(tmpdir_env, "--reap", "--grace", "1")
    assert code == 0, out
    assert f"{orphaned_helper.pid}" in out
    assert "reaped (SIGTERM)" in out
    assert is_gone(orphaned_helper)
    assert is_gone(grandchild)
