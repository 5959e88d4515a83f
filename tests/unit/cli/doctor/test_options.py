"""The doctor's options are declared once: our parser and Airflow's CLI get the same arguments and agree."""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

import pytest

from airflow_executor_logs.cli.doctor.options import (
    DEFAULT_GRACE,
    OPTIONS,
    _non_negative_seconds,
    add_arguments,
    airflow_args,
)

ARGVS = [
    [],
    ["--all"],
    ["--reap", "--grace", "0"],
    ["--reap", "--json", "--grace", "2.5", "--tmpdir", "/x"],
    ["--tmpdir", "/var/tmp", "--all", "--json"],
]


def _ours() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doctor", exit_on_error=False)
    add_arguments(parser)
    return parser


def _airflows() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doctor", exit_on_error=False)
    for arg in airflow_args():
        arg.add_to_parser(parser)
    return parser


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, Any] | str:
    """The parsed options, or ``"usage error"``."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return vars(parser.parse_args(argv))
        except (SystemExit, argparse.ArgumentError):
            return "usage error"


def test_the_options_and_their_defaults() -> None:
    assert [flags for flags, _ in OPTIONS] == [("--all",), ("--reap",), ("--grace",), ("--json",), ("--tmpdir",)]
    assert vars(_ours().parse_args([])) == {
        "all": False,
        "reap": False,
        "grace": DEFAULT_GRACE,
        "json": False,
        "tmpdir": None,
    }
    assert _parsed(_ours(), ARGVS[3]) == {"all": False, "reap": True, "grace": 2.5, "json": True, "tmpdir": "/x"}


def test_airflow_gets_the_same_arguments() -> None:
    args = airflow_args()
    assert [(arg.flags, arg.kwargs) for arg in args] == [(flags, kwargs) for flags, kwargs in OPTIONS]


@pytest.mark.parametrize("argv", [*ARGVS, ["--grace", "-1"], ["--grace", "soon"], ["--bogus"]])
def test_both_parsers_agree(argv: list[str]) -> None:
    assert _parsed(_ours(), argv) == _parsed(_airflows(), argv)


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("2.5", 2.5), ("1e1", 10.0)])
def test_grace_seconds(value: str, seconds: float) -> None:
    assert _non_negative_seconds(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "must be a number >= 0, got '-1'"),
        ("nan", "must be a number >= 0, got 'nan'"),
        ("soon", "not a number of seconds: 'soon'"),
    ],
)
def test_grace_that_is_not_seconds(value: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        _non_negative_seconds(value)
    assert str(raised.value) == message
