"""
Command line: ``airflow-executor-logs <command>``, also available as ``airflow executor-logs <command>``.

The second form is registered through the provider info (``"cli"`` key) that Airflow's
``ProvidersManager`` reads; see :func:`get_airflow_cli_commands`. Importing this package never
imports Airflow.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from airflow_executor_logs import __version__
from airflow_executor_logs.cli import doctor
from airflow_executor_logs.cli.doctor import check as doctor_check
from airflow_executor_logs.cli.doctor import options as doctor_options

__all__ = ["build_parser", "get_airflow_cli_commands", "main"]

PROG = "airflow-executor-logs"
AIRFLOW_GROUP = "executor-logs"
_GROUP_HELP = "Diagnostics for airflow-executor-logs (executor log reads in the API server)"


def build_parser() -> argparse.ArgumentParser:
    """The ``airflow-executor-logs`` parser, one subparser per command."""
    parser = argparse.ArgumentParser(prog=PROG, description=_GROUP_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    doctor_parser = commands.add_parser("doctor", help=doctor_options.HELP, description=doctor_options.DESCRIPTION)
    doctor_options.add_arguments(doctor_parser)
    check_parser = doctor_options.add_check(doctor_parser)
    doctor_parser.set_defaults(func=doctor.run)
    check_parser.set_defaults(func=doctor_check.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (2 on usage errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 after --help / --version
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else doctor_options.EXIT_USAGE)
    return int(args.func(args))


def get_airflow_cli_commands() -> list[Any]:
    """The ``airflow executor-logs`` command group, for the provider info's ``"cli"`` key."""
    from airflow.cli.cli_config import ActionCommand, GroupCommand, lazy_load_command

    doctor_command = ActionCommand(
        name="doctor",
        help=doctor_options.HELP,
        description=doctor_options.DESCRIPTION,
        func=lazy_load_command("airflow_executor_logs.cli.doctor.airflow_command"),
        args=doctor_options.airflow_args(),
    )
    return [GroupCommand(name=AIRFLOW_GROUP, help=_GROUP_HELP, subcommands=(doctor_command,))]
