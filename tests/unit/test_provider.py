"""Provider info: accepted by Airflow's own schema, defaults equal to ``config.py``, seen by the CLI."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path
from typing import Any

import pytest

from airflow_executor_logs import __version__, config
from airflow_executor_logs.provider import PACKAGE_NAME, get_provider_info
from tests.support.process_control import stop_process_tree

ENTRY_POINT = "airflow_executor_logs.provider:get_provider_info"
OPTION_KEYS = {"description", "version_added", "type", "example", "default", "sensitive"}


def _parse(option: dict[str, Any]) -> object:
    default = option["default"]
    if option["type"] == "float":
        return float(default)
    if option["type"] == "integer":
        return int(default)
    if option["type"] == "boolean":
        assert default in ("True", "False")
        return default == "True"
    raise AssertionError(f"unexpected option type {option['type']!r}")


def _options() -> dict[str, dict[str, Any]]:
    return get_provider_info()["config"][config.SECTION]["options"]


def test_validates_against_airflows_provider_info_schema() -> None:
    from airflow.providers_manager import _create_provider_info_schema_validator

    info = get_provider_info()
    _create_provider_info_schema_validator().validate(info)  # what ProvidersManager runs on discovery
    for name, option in _options().items():
        assert set(option) <= OPTION_KEYS, name  # the schema's typo'd "additional_properties" checks nothing
        assert option["description"].strip(), name
        assert option["version_added"] == "0.1.0"
        assert isinstance(option["example"], str)


def test_names_the_installed_distribution() -> None:
    # ProvidersManager refuses provider info whose package-name differs from the distribution's name.
    assert distribution(PACKAGE_NAME).metadata["Name"] == PACKAGE_NAME
    assert get_provider_info()["package-name"] == PACKAGE_NAME
    assert get_provider_info()["versions"] == [__version__]


def test_the_declared_defaults() -> None:
    declared = {name: _parse(option) for name, option in _options().items()}
    assert declared == {
        "read_timeout": 5.0,
        "connect_timeout": 1.0,
        "remote_read_timeout": 2.0,
        "client_ttl": 300.0,
        "fallback_timeout": 30.0,
        "fallback_enabled": True,
        "fallback_idle": 120.0,
        "max_concurrent_fallback_reads": 4,
        "breaker_threshold": 3,
        "breaker_cooldown": 15.0,
        "max_concurrent_reads": 8,
        "slot_wait": 0.25,
        "pod_cache_ttl": 60.0,
        "pod_cache_size": 4096,
        "answer_ttl": 1.0,
        "stale_lines_max_bytes": 8388608,
        "stale_lines_ttl": 600.0,
    }
    assert declared == {name: getattr(config.Settings(), name) for name in declared}


def test_the_readme_table_lists_each_option_with_its_declared_default() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", readme, re.MULTILINE))
    table = {name: default for name, default in rows.items() if name in config.Settings.__dataclass_fields__}
    assert sorted(table) == sorted(_options())
    for name, option in _options().items():
        assert _parse({"type": option["type"], "default": table[name]}) == _parse(option), name


def test_cli_commands_parse_with_airflows_parser() -> None:
    from airflow.cli.cli_config import GroupCommand
    from airflow.cli.cli_parser import _add_command

    (group,) = get_provider_info()["cli"]
    module, _, function = group.rpartition(".")
    commands = getattr(__import__(module, fromlist=[function]), function)()
    assert [(command.name, type(command)) for command in commands] == [("executor-logs", GroupCommand)]

    parser = argparse.ArgumentParser(prog="airflow")
    _add_command(parser.add_subparsers(dest="subcommand"), commands[0])
    args = parser.parse_args(["executor-logs", "doctor", "--reap", "--json", "--grace", "2", "--tmpdir", "/x"])
    assert (args.reap, args.json, args.grace, args.tmpdir, args.all) == (True, True, 2.0, "/x", False)
    assert args.func.__name__ == "airflow_command"


def _section_values(listing: str, section: str) -> dict[str, str]:
    """``option = value`` lines of ``[section]`` in ``airflow config list`` output (log lines around it ignored)."""
    values: dict[str, str] = {}
    lines = iter(listing.splitlines())
    for line in lines:
        if line.strip() == f"[{section}]":
            break
    else:
        raise AssertionError(f"no [{section}] in:\n{listing}")
    for line in lines:
        if not line.strip() or line.startswith("["):
            break
        name, separator, value = line.partition(" = ")
        assert separator, f"not an option: {line!r}"
        assert not name.startswith("#"), f"no value shown: {line!r}"
        values[name] = value
    return values


@pytest.mark.slow
def test_airflow_cli_sees_provider_and_defaults(tmp_path: Path) -> None:
    from airflow.cli import cli_config

    if ENTRY_POINT not in {entry_point.value for entry_point in entry_points(group="apache_airflow_provider")}:
        pytest.skip("the apache_airflow_provider entry point is not installed")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW__EXECUTOR_LOGS__")}
    airflow = Path(sys.executable).with_name("airflow")
    if not airflow.exists():
        pytest.skip("no airflow console script next to this interpreter")

    def start(*args: str) -> subprocess.Popen[str]:
        # An AIRFLOW_HOME each: both commands run at once, and each writes a default airflow.cfg into it.
        home = tmp_path / args[0]
        home.mkdir()
        return subprocess.Popen(
            [str(airflow), *args],
            env={**env, "AIRFLOW_HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def output(proc: subprocess.Popen[str]) -> str:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        return out

    # One `config list` of the section (3.2+ shows values only with --show-values), not a get-value per option; the
    # two commands run side by side (each spends seconds importing Airflow).
    show_values = ["--show-values"] if hasattr(cli_config, "ARG_CONFIG_SHOW_VALUES") else []
    started = [start("config", "list", "--section", config.SECTION, *show_values)]
    try:
        started.append(start("providers", "list", "-o", "json"))
        listing, providers_json = (output(proc) for proc in started)
    finally:
        for proc in started:
            stop_process_tree(proc, grace=5.0)  # no-op once it has exited
    listed = _section_values(listing, config.SECTION)
    assert listed == {name: option["default"] for name, option in _options().items()}

    # Core 3.0 logs to stdout too (alembic 1.17+ logs its plugin setup there), before the one-line JSON document.
    providers = json.loads(providers_json.strip().splitlines()[-1])
    assert {"package_name": PACKAGE_NAME, "version": __version__} in [
        {key: provider[key] for key in ("package_name", "version")} for provider in providers
    ]
