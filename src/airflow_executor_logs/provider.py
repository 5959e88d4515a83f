"""
Provider metadata: lets Airflow's ``ProvidersManager`` discover this package.

Registered through the ``apache_airflow_provider`` entry point. It declares the ``[executor_logs]``
config section (so ``airflow config list`` and ``airflow config get-value`` know its defaults) and
the ``airflow executor-logs`` CLI group. Importing this module never imports Airflow.
"""

from __future__ import annotations

from typing import Any

from airflow_executor_logs import __version__, config

PACKAGE_NAME = "airflow-executor-logs"
CLI_COMMANDS = "airflow_executor_logs.cli.get_airflow_cli_commands"
_FIRST_VERSION = "0.1.0"


def _option(description: str, type_: str, default: str, example: str | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": _FIRST_VERSION,
        "type": type_,
        "example": example,
        "default": default,
    }


def config_options() -> dict[str, dict[str, Any]]:
    """The ``[executor_logs]`` options, with defaults taken from :mod:`airflow_executor_logs.config`."""
    return {
        "read_timeout": _option(
            "Wall-clock deadline, in seconds, for one class-level read of a running task's executor logs "
            "(all API calls and the whole streamed body). Values <= 0 mean the default.\n",
            "float",
            str(config.DEFAULT_READ_TIMEOUT),
            "10.0",
        ),
        "connect_timeout": _option(
            "Connect timeout, in seconds, for each API call a class-level reader makes. "
            "Values <= 0 mean the default.\n",
            "float",
            str(config.DEFAULT_CONNECT_TIMEOUT),
            "2.0",
        ),
        "client_ttl": _option(
            "Seconds a class-level reader may reuse an API client before building a new one "
            "(a client is also rebuilt after a 401). Values <= 0 mean the default.\n",
            "float",
            str(config.DEFAULT_CLIENT_TTL),
            "600.0",
        ),
        "fallback_timeout": _option(
            "Deadline, in seconds, for a read through a short-lived executor (built for one read of an "
            "executor without a class-level reader, then ended): build, read and teardown. "
            "Values <= 0 mean the default.\n",
            "float",
            str(config.DEFAULT_FALLBACK_TIMEOUT),
            "60.0",
        ),
        "fallback_enabled": _option(
            "Whether an executor class that overrides get_task_log but has no class-level reader may be "
            "built for one read (and torn down afterwards). When off, such reads return a notice instead.\n",
            "boolean",
            str(config.DEFAULT_FALLBACK_ENABLED),
            "False",
        ),
        "breaker_threshold": _option(
            "Consecutive transport failures (timeouts, refused or reset connections; not error statuses such as "
            "404 or 403) against one Kubernetes cluster after which reads of running tasks' pod logs are answered "
            "at once, with a message, for breaker_cooldown seconds. Values <= 0 mean the default.\n",
            "integer",
            str(config.DEFAULT_BREAKER_THRESHOLD),
            "5",
        ),
        "breaker_cooldown": _option(
            "Seconds an open circuit breaker answers reads at once before it lets one probe read through; the "
            "probe's success closes it, its failure opens it again. Values <= 0 mean the default.\n",
            "float",
            str(config.DEFAULT_BREAKER_COOLDOWN),
            "30.0",
        ),
        "max_concurrent_reads": _option(
            "Class-level reads of running tasks' logs that one API server worker process lets wait at once; "
            "each holds a threadpool thread and a database connection. Values <= 0 mean the default.\n",
            "integer",
            str(config.DEFAULT_MAX_CONCURRENT_READS),
            "4",
        ),
        "slot_wait": _option(
            "Seconds a read waits for one of the max_concurrent_reads slots before it answers that the worker "
            "is busy. Values <= 0 mean the default.\n",
            "float",
            str(config.DEFAULT_SLOT_WAIT),
            "0.5",
        ),
        "pod_cache_ttl": _option(
            "Seconds a task's pod name is remembered, so that a steady read makes one Kubernetes call (the log) "
            "instead of two; a pod that is gone is looked up again at once. Values <= 0 mean the default.\n",
            "float",
            str(config.DEFAULT_POD_CACHE_TTL),
            "30.0",
        ),
        "pod_cache_size": _option(
            "Pod names remembered per API server worker process (least recently used first out). "
            "Values <= 0 mean the default.\n",
            "integer",
            str(config.DEFAULT_POD_CACHE_SIZE),
            "10000",
        ),
    }


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
                "options": config_options(),
            }
        },
    }
