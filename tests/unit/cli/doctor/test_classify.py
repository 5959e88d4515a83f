"""Classification: orphaned (and what it was forked from), a child of an Airflow process, or of anything else."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile

import psutil
import pytest

from airflow_executor_logs.cli.doctor.classify import (
    KIND_AIRFLOW,
    KIND_ORPHANED,
    KIND_OTHER,
    airflow_role,
    classify,
    scan,
)
from airflow_executor_logs.utils.processes import ManagerProcess
from tests.support.processes import python_child
from tests.unit.cli.doctor.lab import WORKER_TITLE

TITLED = "import setproctitle, time; setproctitle.setproctitle({title!r}); print('ready', flush=True); time.sleep(60)"


def _manager(ppid: int, orphan_reason: str | None, cmdline: tuple[str, ...] = ("python", "-c", "x")) -> ManagerProcess:
    return ManagerProcess(
        pid=4242,
        ppid=ppid,
        create_time=1000.0,
        rss=3000,
        uss=2000,
        cmdline=cmdline,
        socket_path="/tmp/pymp-a/listener-b",
        orphan_reason=orphan_reason,
    )


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


def test_an_orphan_says_what_it_was_forked_from() -> None:
    manager = _manager(1, "ppid 1", cmdline=(WORKER_TITLE, "", ""))  # a forked Manager keeps its parent's title
    record = classify(manager)
    assert (record.kind, record.origin, record.forked_from, record.orphaned) == (
        KIND_ORPHANED,
        "orphaned (ppid 1), forked from airflow api-server worker",
        "airflow api-server worker",
        True,
    )
    assert {field.name: getattr(record, field.name) for field in dataclasses.fields(ManagerProcess)} == (
        dataclasses.asdict(manager)
    )


def test_an_orphan_of_something_else() -> None:
    record = classify(_manager(1, "adopted by tini 7"))
    assert (record.kind, record.origin, record.forked_from) == (KIND_ORPHANED, "orphaned (adopted by tini 7)", None)


def test_a_child_of_an_airflow_process() -> None:
    with python_child(TITLED.format(title=WORKER_TITLE)) as worker:
        record = classify(_manager(worker.proc.pid, None))
    assert (record.kind, record.origin, record.orphaned) == (
        KIND_AIRFLOW,
        f"child of airflow api-server worker {worker.proc.pid}",
        False,
    )


def test_a_child_of_anything_else() -> None:
    me = psutil.Process()
    record = classify(_manager(me.pid, None))
    assert (record.kind, record.origin) == (KIND_OTHER, f"child of non-Airflow process {me.pid} ({me.name()})")


def test_a_parent_that_went_away_meanwhile_is_named_by_pid_only() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    record = classify(_manager(gone.pid, None))  # found alive a moment ago, gone when classified
    assert (record.kind, record.origin) == (KIND_OTHER, f"child of non-Airflow process {gone.pid} (?)")


def test_scan_of_a_directory_without_managers_is_empty() -> None:
    with tempfile.TemporaryDirectory(prefix="ael-classify-") as empty:
        assert scan(empty) == []
        assert scan(os.path.join(empty, "missing")) == []
