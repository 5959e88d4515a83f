"""
Process control, in one place: stop processes, tell whether one is gone or orphaned, find Manager servers.

Everything here is psutil-based and free of Airflow imports; the short-lived executor, its helper and the
doctor use it. What only the tests and benchmarks need (waiting for processes, stopping trees, finding
them by environment) lives in ``tests/support/process_control.py``.

* :mod:`.state`: :func:`is_gone` (a zombie counts as gone) and :func:`orphan_reason`;
* :mod:`.stopping`: :func:`stop_each` / :func:`stop_processes` (SIGTERM, wait, SIGKILL, wait);
* :mod:`.descendants`: :func:`stop_descendants` (a subreaper's tree) and :func:`stop_tree` (another's);
* :mod:`.managers`: the one :class:`ManagerProcess` record, :func:`find_manager_processes` and :func:`is_manager`.
"""

from __future__ import annotations

from airflow_executor_logs.utils.processes.descendants import stop_descendants, stop_tree
from airflow_executor_logs.utils.processes.managers import (
    ManagerProcess,
    find_manager_processes,
    is_manager,
    owns_socket,
)
from airflow_executor_logs.utils.processes.state import is_gone, orphan_reason
from airflow_executor_logs.utils.processes.stopping import Outcome, Stoppable, StopResult, stop_each, stop_processes

__all__ = [
    "ManagerProcess",
    "Outcome",
    "StopResult",
    "Stoppable",
    "find_manager_processes",
    "is_gone",
    "is_manager",
    "orphan_reason",
    "owns_socket",
    "stop_descendants",
    "stop_each",
    "stop_processes",
    "stop_tree",
]
