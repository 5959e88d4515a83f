"""
Provider metadata: lets Airflow's ``ProvidersManager`` discover this package.

Registered through the ``apache_airflow_provider`` entry point. It declares the ``[executor_logs]``
config section (so ``airflow config list`` and ``airflow config get-value`` know its defaults) and
the ``airflow executor-logs`` CLI group. Importing this module never imports Airflow.
"""

from __future__ import annotations

from typing import Any

from airflow_executor_logs import __version__, config

__all__ = ["CLI_COMMANDS", "PACKAGE_NAME", "get_provider_info"]

PACKAGE_NAME = "airflow-executor-logs"
CLI_COMMANDS = "airflow_executor_logs.cli.get_airflow_cli_commands"


def get_provider_info() -> dict[str, Any]:
    """Provider info in the shape ``airflow/provider_info.schema.json`` validates."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Executor logs",
        "description": (
            "Reads RUNNING task logs in the Airflow API server through class-level executor log readers, "
            "without building (and leaking) executor instances.\n"
        ),
        "versions": [__version__],
        "cli": [CLI_COMMANDS],
        "config": {
            config.SECTION: {
                "description": (
                    "Reading a running task's logs from its executor in the API server (airflow-executor-logs).\n"
                ),
                "options": config.provider_config_options(),
            }
        },
    }
