"""Output of given records: the table, the summary line, the reap lines, the JSON document, and the exit code."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Sequence
from types import SimpleNamespace

import pytest

from airflow_executor_logs.cli.doctor.classify import KIND_AIRFLOW, KIND_ORPHANED, ManagerRecord
from airflow_executor_logs.cli.doctor.options import EXIT_OK, EXIT_ORPHANS
from airflow_executor_logs.cli.doctor.output import Summary, format_age, format_bytes, print_json, print_text, summarize
from airflow_executor_logs.cli.doctor.reap import GONE, REAPED, SKIPPED, ReapResult
from airflow_executor_logs.utils.processes import managers

MIB = 1024 * 1024
NOW = 10_000.0
ORPHAN = ManagerRecord(
    pid=101,
    ppid=1,
    create_time=NOW - 312,
    rss=2 * MIB,
    uss=MIB,
    cmdline=("[ready] airflow api-server worker", "", ""),
    socket_path="/tmp/pymp-a/listener-1",
    orphan_reason="ppid 1",
    kind=KIND_ORPHANED,
    origin="orphaned (ppid 1), forked from airflow api-server worker",
    forked_from="airflow api-server worker",
)
CHILD = ManagerRecord(
    pid=202,
    ppid=200,
    create_time=NOW - 42,
    rss=3 * MIB,
    uss=None,
    cmdline=("airflow", "scheduler"),
    socket_path="/tmp/pymp-b/listener-2",
    orphan_reason=None,
    kind=KIND_AIRFLOW,
    origin="child of airflow scheduler 200",
)
TABLE = [
    "PID  PPID    AGE      RSS      USS  ORIGIN",
    "101     1  5m12s  2.0 MiB  1.0 MiB  orphaned (ppid 1), forked from airflow api-server worker",
    "202   200    42s  3.0 MiB        -  child of airflow scheduler 200",
    "",
]


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ages are read against a fixed clock."""
    monkeypatch.setattr(managers, "time", SimpleNamespace(time=lambda: NOW))


def _text(shown: Sequence[ManagerRecord], results: dict[int, ReapResult] | None, hidden: int = 0) -> list[str]:
    out = io.StringIO()
    print_text(shown, results, summarize(shown, hidden, None if results is None else list(results.values())), out)
    return out.getvalue().splitlines()


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


def test_the_table_and_what_to_do_about_orphans() -> None:
    assert _text([ORPHAN, CHILD], None) == [
        *TABLE,
        "2 Manager server(s), 1 orphaned (1.0 MiB).",
        "Run with --reap to terminate the orphans.",
    ]


def test_hidden_managers_are_counted() -> None:
    assert _text([CHILD], None, hidden=3)[-1] == (
        "1 Manager server(s), 0 orphaned (0 B); 3 of non-Airflow processes not shown (--all)."
    )


def test_nothing_found_is_one_line() -> None:
    assert _text([], None) == ["0 Manager server(s), 0 orphaned (0 B)."]


def test_each_reap_result_has_a_line_and_the_total_is_freed_memory() -> None:
    reaped = {ORPHAN.pid: ReapResult(ORPHAN.pid, REAPED, "SIGTERM", ORPHAN.memory)}
    assert _text([ORPHAN, CHILD], reaped) == [
        *TABLE,
        "2 Manager server(s), 1 orphaned (1.0 MiB).",
        "Reaped 101 (SIGTERM), freed 1.0 MiB.",
        "Reaped 1 of 1 orphan(s), freed 1.0 MiB.",
    ]
    skipped = {ORPHAN.pid: ReapResult(ORPHAN.pid, SKIPPED, "pid reused by another process")}
    assert _text([ORPHAN, CHILD], skipped)[-2:] == [
        "Not reaped 101: skipped, pid reused by another process.",
        "Reaped 0 of 1 orphan(s), freed 0 B.",
    ]


def test_summary_counts_and_exit_code() -> None:
    assert summarize([ORPHAN, CHILD], 1, None) == Summary(
        shown=2, hidden=1, orphans=1, orphan_memory=MIB, reaped=0, freed=0, remaining=1
    )
    assert summarize([ORPHAN, CHILD], 1, None).exit_code == EXIT_ORPHANS
    results = [ReapResult(ORPHAN.pid, REAPED, "SIGKILL", MIB), ReapResult(303, GONE, "already exited")]
    after = summarize([ORPHAN, CHILD], 0, results)
    assert (after.reaped, after.freed, after.remaining, after.exit_code) == (1, MIB, 0, EXIT_OK)
    left = summarize([ORPHAN], 0, [ReapResult(ORPHAN.pid, SKIPPED, "not signalled")])
    assert (left.reaped, left.remaining, left.exit_code) == (0, 1, EXIT_ORPHANS)


def test_the_json_document() -> None:
    results = {ORPHAN.pid: ReapResult(ORPHAN.pid, REAPED, "SIGTERM", MIB)}
    summary = summarize([ORPHAN, CHILD], 2, list(results.values()))
    out = io.StringIO()
    print_json([ORPHAN, CHILD], results, summary, out, {"active": True})
    assert out.getvalue().endswith("}\n")
    assert json.loads(out.getvalue()) == {
        "hostname": socket.gethostname(),
        "activation": {"active": True},
        "managers": [
            {
                "pid": 101,
                "ppid": 1,
                "create_time": NOW - 312,
                "age_seconds": 312.0,
                "rss_bytes": 2 * MIB,
                "uss_bytes": MIB,
                "memory_bytes": MIB,
                "kind": "orphaned",
                "orphaned": True,
                "origin": "orphaned (ppid 1), forked from airflow api-server worker",
                "forked_from": "airflow api-server worker",
                "socket_path": "/tmp/pymp-a/listener-1",
                "cmdline": ["[ready] airflow api-server worker"],  # setproctitle's padding dropped
                "reap": {"outcome": "reaped", "detail": "SIGTERM", "freed_bytes": MIB},
            },
            {
                "pid": 202,
                "ppid": 200,
                "create_time": NOW - 42,
                "age_seconds": 42.0,
                "rss_bytes": 3 * MIB,
                "uss_bytes": None,
                "memory_bytes": 3 * MIB,
                "kind": "airflow",
                "orphaned": False,
                "origin": "child of airflow scheduler 200",
                "forked_from": None,
                "socket_path": "/tmp/pymp-b/listener-2",
                "cmdline": ["airflow", "scheduler"],
                "reap": None,
            },
        ],
        "summary": {
            "managers": 2,
            "hidden": 2,
            "orphans": 1,
            "orphan_memory_bytes": MIB,
            "reaped": 1,
            "freed_bytes": MIB,
            "remaining_orphans": 0,
            "exit_code": 0,
        },
    }
