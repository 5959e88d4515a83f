"""
Process control, in one place: stop processes, tell whether one is gone or orphaned, find Manager servers.

Everything here is psutil-based and free of Airflow imports, so the short-lived executor, the doctor,
the test sandbox, the demo and the benchmarks all use it.

* :mod:`.state`: :func:`is_gone` (a zombie counts as gone), :func:`orphan_reason` / :func:`is_orphaned`,
  :func:`same_process`, :func:`process_tree`, :func:`find_processes_with_env`;
* :mod:`.stopping`: :func:`stop_each` / :func:`stop_processes` (SIGTERM, wait, SIGKILL, wait),
  :func:`stop_process_tree`, :func:`stop_children` (only what is still our child) and :func:`wait_gone`;
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
from airflow_executor_logs.utils.processes.state import (
    INIT_NAMES,
    find_processes_with_env,
    is_gone,
    is_orphaned,
    orphan_reason,
    process_tree,
    same_process,
)
from airflow_executor_logs.utils.processes.stopping import (
    Outcome,
    Stoppable,
    StopResult,
    stop_children,
    stop_each,
    stop_process_tree,
    stop_processes,
    wait_gone,
)

__all__ = [
    "INIT_NAMES",
    "ManagerProcess",
    "Outcome",
    "StopResult",
    "Stoppable",
    "find_manager_processes",
    "find_processes_with_env",
    "is_gone",
    "is_manager",
    "is_orphaned",
    "orphan_reason",
    "owns_socket",
    "process_tree",
    "same_process",
    "stop_children",
    "stop_descendants",
    "stop_each",
    "stop_process_tree",
    "stop_processes",
    "stop_tree",
    "wait_gone",
]
