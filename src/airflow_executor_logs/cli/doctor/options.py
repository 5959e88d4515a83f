"""The doctor's command-line contract: help, options and exit codes, declared once for both CLIs."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = [
    "CHECK_DESCRIPTION",
    "CHECK_HELP",
    "DEFAULT_GRACE",
    "DESCRIPTION",
    "EXIT_INACTIVE",
    "EXIT_OK",
    "EXIT_ORPHANS",
    "EXIT_USAGE",
    "HELP",
    "OPTIONS",
    "add_arguments",
    "add_check",
    "airflow_args",
]

EXIT_OK = 0
EXIT_ORPHANS = 1
EXIT_USAGE = 2
EXIT_INACTIVE = 3

DEFAULT_GRACE = 5.0

HELP = "Find multiprocessing Manager servers left by executors; report (and --reap) orphaned ones"
DESCRIPTION = (
    "Lists the multiprocessing Manager server processes on this host that belong to Airflow processes or "
    "have been orphaned, with their memory. Exit code: 0 when there are no orphans (or all were reaped), "
    "1 when orphans remain, 2 on usage errors, 3 when the installed Airflow core calls no hook this package "
    "knows (so executor logs are read the stock way)."
)


CHECK_HELP = "Check that the log view of running tasks works here (read-only); one line per check"
CHECK_DESCRIPTION = (
    "Run where the API server runs (same image, same config). Checks that the logging config enables this "
    "package and keeps remote logging, how each configured executor's running tasks' logs are read, each "
    "Kubernetes cluster configuration (client, /version, RBAC), the workers' log servers of RUNNING tasks, and "
    "the Manager processes. Prints ok/warn/fail per check, with the change that fixes each failure. Exit code: "
    "0 no failure, 1 a failure, 2 the check could not run."
)


def _non_negative_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if seconds < 0 or seconds != seconds:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {value!r}")
    return seconds


#: ``(flags, argparse keyword arguments)`` of every doctor option; shared by our parser and Airflow's CLI.
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--all",), {"dest": "all", "action": "store_true", "help": "Also list Managers of non-Airflow processes."}),
    (
        ("--reap",),
        {
            "dest": "reap",
            "action": "store_true",
            "help": "Terminate orphaned Managers (SIGTERM, then SIGKILL after --grace seconds).",
        },
    ),
    (
        ("--grace",),
        {
            "dest": "grace",
            "type": _non_negative_seconds,
            "default": DEFAULT_GRACE,
            "metavar": "SECONDS",
            "help": f"Seconds between SIGTERM and SIGKILL with --reap (default {DEFAULT_GRACE:g}).",
        },
    ),
    (("--json",), {"dest": "json", "action": "store_true", "help": "Print JSON (records and a summary)."}),
    (
        ("--tmpdir",),
        {
            "dest": "tmpdir",
            "default": None,
            "metavar": "DIR",
            "help": "Only Managers whose socket lives under DIR (the TMPDIR of the processes to check).",
        },
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the doctor options to ``parser`` (``airflow-executor-logs doctor``)."""
    for flags, kwargs in OPTIONS:
        parser.add_argument(*flags, **kwargs)


def add_check(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``check`` under the doctor's ``parser`` (``airflow-executor-logs doctor check``); return its parser."""
    commands = parser.add_subparsers(dest="doctor_command", metavar="COMMAND")
    check = commands.add_parser("check", help=CHECK_HELP, description=CHECK_DESCRIPTION)
    check.add_argument("--json", dest="json", action="store_true", help="Print one JSON document (see docs).")
    check.add_argument(
        "--tmpdir", dest="tmpdir", default=None, metavar="DIR", help="Processes: only Managers with sockets under DIR."
    )
    return check


def airflow_args() -> tuple[Any, ...]:
    """The doctor options as Airflow CLI ``Arg`` objects (``airflow executor-logs doctor``); imports Airflow."""
    from airflow.cli.cli_config import Arg

    return tuple(Arg(flags, **kwargs) for flags, kwargs in OPTIONS)
