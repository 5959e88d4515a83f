"""The command line: ``main`` parses, dispatches and returns exit codes; the same commands for Airflow's CLI."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys

import pytest

from airflow_executor_logs import __version__
from airflow_executor_logs.cli import AIRFLOW_GROUP, PROG, build_parser, get_airflow_cli_commands, main
from airflow_executor_logs.cli import doctor as doctor_package
from airflow_executor_logs.cli.doctor import options as doctor_options


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


def test_version() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--version"]) == 0
    assert out.getvalue() == f"{PROG} {__version__}\n"


def test_the_parser_has_the_doctor_command() -> None:
    args = build_parser().parse_args(["doctor", "--reap", "--grace", "1"])
    assert (args.command, args.reap, args.grace, args.all, args.json, args.tmpdir) == (
        "doctor",
        True,
        1.0,
        False,
        False,
        None,
    )
    assert args.func is doctor_package.run


def test_main_returns_what_the_command_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []

    def fake_run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 7

    monkeypatch.setattr(doctor_package, "run", fake_run)
    assert main(["doctor", "--json", "--tmpdir", "/x"]) == 7
    (args,) = seen
    assert (args.json, args.tmpdir) == (True, "/x")


def test_airflow_cli_commands() -> None:
    from airflow.cli.cli_config import ActionCommand, GroupCommand

    (group,) = get_airflow_cli_commands()
    assert isinstance(group, GroupCommand)
    assert group.name == AIRFLOW_GROUP == "executor-logs"
    assert group.help == build_parser().description
    (command,) = group.subcommands
    assert isinstance(command, ActionCommand)
    assert (command.name, command.help, command.description) == (
        "doctor",
        doctor_options.HELP,
        doctor_options.DESCRIPTION,
    )
    assert [arg.flags for arg in command.args] == [flags for flags, _ in doctor_options.OPTIONS]
    assert command.func.__name__ == "airflow_command"  # loaded on first call


def test_importing_the_cli_does_not_import_airflow() -> None:
    script = (
        "import sys, airflow_executor_logs.cli\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'airflow'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout == "[]\n"
