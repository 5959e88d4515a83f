"""What ``doctor check`` reports: one :class:`CheckResult` per check, printed as a line or as JSON (:data:`SCHEMA`)."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["FAIL", "OK", "SCHEMA", "STATUSES", "WARN", "CheckResult", "document", "exit_code", "print_text"]

OK = "ok"
WARN = "warn"
FAIL = "fail"
STATUSES = (OK, WARN, FAIL)

EXIT_OK = 0
EXIT_FAIL = 1
#: The check itself could not run (Airflow not importable, its config unreadable, a usage error).
EXIT_COULD_NOT_RUN = 2


@dataclass(frozen=True)
class CheckResult:
    """
    One line of the report.

    :param check: which check (``enabled``, ``remote-logging``, ``remote-store``, ``executor``, ``kubernetes``,
        ``served-logs``, ``processes``).
    :param subject: what it looked at (an executor, a team's cluster), ``None`` when there is one.
    :param status: ``ok``, ``warn`` or ``fail``.
    :param summary: the line, without the status.
    :param fix: the one change that fixes a ``fail`` (or a ``warn``), ``None`` for ``ok``.
    :param details: machine-readable facts behind the line (JSON values only).
    """

    check: str
    subject: str | None
    status: str
    summary: str
    fix: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    @property
    def title(self) -> str:
        return self.check if self.subject is None else f"{self.check} {self.subject}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "status": self.status,
            "summary": self.summary,
            "fix": self.fix,
            "details": dict(self.details),
        }


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when no check failed (warnings included), 1 when one did."""
    return EXIT_FAIL if any(result.status == FAIL for result in results) else EXIT_OK


def print_text(results: Sequence[CheckResult], out: TextIO) -> None:
    """``ok   title: summary`` per check; a ``fix:`` line under each ``warn`` and ``fail``; then the counts."""
    for result in results:
        out.write(f"{result.status:<4}  {result.title}: {result.summary}\n")
        if result.fix and result.status != OK:
            out.write(f"      fix: {result.fix}\n")
    counts = {status: sum(1 for r in results if r.status == status) for status in STATUSES}
    out.write(f"{counts[OK]} ok, {counts[WARN]} warn, {counts[FAIL]} fail.\n")


def document(results: Sequence[CheckResult], seconds: float, network_seconds: float = 0.0) -> dict[str, Any]:
    """The ``--json`` document (:data:`SCHEMA`): ``seconds`` in all, ``network_seconds`` waiting on the network."""
    return {
        "schema": 1,
        "hostname": socket.gethostname(),
        "seconds": round(seconds, 3),
        "network_seconds": round(network_seconds, 3),
        "exit_code": exit_code(results),
        "counts": {status: sum(1 for r in results if r.status == status) for status in STATUSES},
        "checks": [result.as_dict() for result in results],
    }


def print_json(results: Sequence[CheckResult], seconds: float, network_seconds: float, out: TextIO) -> None:
    json.dump(document(results, seconds, network_seconds), out, indent=2)
    out.write("\n")


_COUNT = {"type": "integer", "minimum": 0}

#: JSON Schema (draft 2020-12) of ``doctor check --json``; docs/operations.md shows it, a test validates against it.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "airflow-executor-logs doctor check",
    "type": "object",
    "required": ["schema", "hostname", "seconds", "network_seconds", "exit_code", "counts", "checks"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": 1},
        "hostname": {"type": "string"},
        "seconds": {"type": "number", "minimum": 0},
        "network_seconds": {"type": "number", "minimum": 0},
        "exit_code": {"enum": [EXIT_OK, EXIT_FAIL]},
        "counts": {
            "type": "object",
            "required": list(STATUSES),
            "additionalProperties": False,
            "properties": dict.fromkeys(STATUSES, _COUNT),
        },
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["check", "subject", "status", "summary", "fix", "details"],
                "additionalProperties": False,
                "properties": {
                    "check": {
                        "enum": [
                            "enabled",
                            "remote-logging",
                            "remote-store",
                            "executor",
                            "kubernetes",
                            "served-logs",
                            "processes",
                        ]
                    },
                    "subject": {"type": ["string", "null"]},
                    "status": {"enum": list(STATUSES)},
                    "summary": {"type": "string"},
                    "fix": {"type": ["string", "null"]},
                    "details": {"type": "object"},
                },
            },
        },
    },
}
