"""Output: the table or JSON document, the summary line and the exit code it implies."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from airflow_executor_logs.cli.doctor.classify import ManagerRecord
from airflow_executor_logs.cli.doctor.helpers import HelperReport
from airflow_executor_logs.cli.doctor.options import EXIT_OK, EXIT_ORPHANS
from airflow_executor_logs.cli.doctor.reap import REAPED, ReapResult

__all__ = ["Summary", "format_age", "format_bytes", "print_helpers", "print_json", "print_text", "summarize"]


def format_bytes(size: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``110.2 MiB``; ``-`` for unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_age(seconds: float) -> str:
    """``42s``, ``5m12s``, ``3h04m``, ``2d03h``."""
    total = int(max(seconds, 0))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _table(records: Sequence[ManagerRecord]) -> list[str]:
    header = ("PID", "PPID", "AGE", "RSS", "USS", "ORIGIN")
    rows = [
        (str(r.pid), str(r.ppid), format_age(r.age), format_bytes(r.rss), format_bytes(r.uss), r.origin)
        for r in records
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.rjust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return lines


@dataclass(frozen=True)
class Summary:
    """Counts behind the last line (and the JSON ``summary``)."""

    shown: int
    hidden: int
    orphans: int
    orphan_memory: int
    reaped: int
    freed: int
    remaining: int

    @property
    def exit_code(self) -> int:
        return EXIT_ORPHANS if self.remaining else EXIT_OK


def summarize(shown: Sequence[ManagerRecord], hidden: int, results: Sequence[ReapResult] | None) -> Summary:
    """The summary of ``shown`` records (``hidden`` more not shown) and, with ``--reap``, their results."""
    orphans = [record for record in shown if record.orphaned]
    if results is None:
        reaped, freed, remaining = 0, 0, len(orphans)
    else:
        reaped = sum(1 for result in results if result.outcome == REAPED)
        freed = sum(result.freed for result in results)
        remaining = sum(1 for result in results if result.remains)
    return Summary(
        shown=len(shown),
        hidden=hidden,
        orphans=len(orphans),
        orphan_memory=sum(record.memory for record in orphans),
        reaped=reaped,
        freed=freed,
        remaining=remaining,
    )


def _record_json(record: ManagerRecord, result: ReapResult | None) -> dict[str, Any]:
    return {
        "pid": record.pid,
        "ppid": record.ppid,
        "create_time": record.create_time,
        "age_seconds": round(record.age, 1),
        "rss_bytes": record.rss,
        "uss_bytes": record.uss,
        "memory_bytes": record.memory,
        "kind": record.kind,
        "orphaned": record.orphaned,
        "origin": record.origin,
        "forked_from": record.forked_from,
        "socket_path": record.socket_path,
        "cmdline": [arg for arg in record.cmdline if arg],  # setproctitle pads with empty args
        "reap": None
        if result is None
        else {"outcome": result.outcome, "detail": result.detail, "freed_bytes": result.freed},
    }


def print_json(
    shown: Sequence[ManagerRecord],
    results: dict[int, ReapResult] | None,
    summary: Summary,
    out: TextIO,
    activation: dict[str, Any] | None = None,
    helpers: HelperReport | None = None,
) -> None:
    """One JSON document: host, records (with their reap results), the summary, the activation, the helpers."""
    document: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "activation": activation,
        "managers": [_record_json(record, (results or {}).get(record.pid)) for record in shown],
        "summary": {
            "managers": summary.shown,
            "hidden": summary.hidden,
            "orphans": summary.orphans,
            "orphan_memory_bytes": summary.orphan_memory,
            "reaped": summary.reaped,
            "freed_bytes": summary.freed,
            "remaining_orphans": summary.remaining,
            "exit_code": summary.exit_code,
        },
    }
    if helpers is not None:
        document["helpers"] = {
            "records": [record.as_dict((helpers.results or {}).get(record.pid)) for record in helpers.records],
            "orphaned": helpers.orphaned,
            "remaining_orphaned": helpers.remaining,
        }
    json.dump(document, out, indent=2)
    out.write("\n")


def print_helpers(helpers: HelperReport, out: TextIO) -> None:
    """The helpers: each with its worker or why it is orphaned, and with ``--reap`` what became of the orphaned."""
    if not helpers.records:
        return
    out.write("\nShort-lived executor helpers (one per API worker that used one):\n")
    for record in helpers.records:
        line = (
            f"  {record.pid}  ppid {record.ppid}  {format_age(record.age)}  {format_bytes(record.rss)}  {record.origin}"
        )
        result = (helpers.results or {}).get(record.pid)
        if result is not None:
            line += f": {'reaped' if result.outcome == REAPED else result.outcome} ({result.detail})"
        out.write(line + "\n")
    out.write(f"{len(helpers.records)} helper(s), {helpers.orphaned} orphaned.\n")
    if helpers.results is None and helpers.orphaned:
        out.write("Run with --reap to stop the orphaned helpers.\n")


def print_text(
    shown: Sequence[ManagerRecord], results: dict[int, ReapResult] | None, summary: Summary, out: TextIO
) -> None:
    """The table, the summary line and, with ``--reap``, one line per orphan and the total freed."""

    def say(line: str = "") -> None:
        out.write(line + "\n")

    if shown:
        for line in _table(shown):
            say(line)
        say()
    hidden = f"; {summary.hidden} of non-Airflow processes not shown (--all)" if summary.hidden else ""
    say(
        f"{summary.shown} Manager server(s), {summary.orphans} orphaned "
        f"({format_bytes(summary.orphan_memory)}){hidden}."
    )
    if results is None:
        if summary.orphans:
            say("Run with --reap to terminate the orphans.")
        return
    for record in shown:
        result = results.get(record.pid)
        if result is None:
            continue
        if result.outcome == REAPED:
            say(f"Reaped {record.pid} ({result.detail}), freed {format_bytes(result.freed)}.")
        else:
            say(f"Not reaped {record.pid}: {result.outcome}, {result.detail}.")
    say(f"Reaped {summary.reaped} of {summary.orphans} orphan(s), freed {format_bytes(summary.freed)}.")
