"""
``doctor check``: will the log view work here, and if not, what to change. Run where the API server runs.

One :class:`~.results.CheckResult` per check, in this order: ``enabled`` and ``remote-logging``
(:mod:`.logging_setup`), ``remote-store`` where the remote log store has a host (:mod:`.remote_store`), one
``executor`` per configured executor and team and per unknown executor a running task names (:mod:`.executors`),
one ``kubernetes`` per cluster configuration (:mod:`.kubernetes`), ``served-logs`` (:mod:`.served_logs`) and
``processes`` (:mod:`.processes`). It changes nothing. The network
checks run at once, each bounded by ``connect_timeout`` and the read deadline, so the whole check takes at
most about 2 x ``connect_timeout`` + ``read_timeout`` even when every network check hangs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from airflow_executor_logs.cli.doctor.check.bounded import Bounded
from airflow_executor_logs.cli.doctor.check.results import (
    EXIT_COULD_NOT_RUN,
    FAIL,
    CheckResult,
    exit_code,
    print_json,
    print_text,
)

__all__ = ["Report", "collect", "run"]


@dataclass(frozen=True)
class Report:
    """The results, and the seconds from the start of the network checks (all at once) to their last answer."""

    results: list[CheckResult]
    network_seconds: float


def _remote_store() -> Any:
    """The remote log store Airflow reads with, when ``[logging] remote_logging`` is on."""
    from airflow.configuration import conf

    from airflow_executor_logs import version_compat

    if not conf.getboolean("logging", "remote_logging", fallback=False):
        return None
    return version_compat.remote_task_log()


def collect(tmpdir: str | None = None) -> Report:
    """
    Every check's result; raises when the check cannot run at all (Airflow or its config unreadable).
    ``tmpdir``: the processes check looks only at Managers whose sockets are under it.
    """
    from airflow_executor_logs.cli.doctor.check.executors import check_executors
    from airflow_executor_logs.cli.doctor.check.kubernetes import check_cluster, clusters
    from airflow_executor_logs.cli.doctor.check.logging_setup import check_enabled, check_remote_logging
    from airflow_executor_logs.cli.doctor.check.processes import check_processes
    from airflow_executor_logs.cli.doctor.check.remote_store import check_remote_store
    from airflow_executor_logs.cli.doctor.check.running import running_tasks
    from airflow_executor_logs.cli.doctor.check.served_logs import check_served_logs
    from airflow_executor_logs.config import Settings
    from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
    from airflow_executor_logs.executors.reader_registry import ReadPath

    settings = Settings.from_conf()
    pipeline = ExecutorLogPipeline(settings=settings)  # its own resolver and readers: nothing shared, nothing kept
    results = [check_enabled(), check_remote_logging()]
    store_call = Bounded(lambda: check_remote_store(_remote_store(), settings.connect_timeout), "remote-store")
    try:
        running, unreadable = running_tasks(), None
    except Exception as err:
        running, unreadable = [], f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    plans = check_executors(pipeline, settings, running)
    results += [plan.result for plan in plans]

    def resolve(ti: Any) -> Any:
        try:
            return pipeline.resolver.resolve(ti, multi_team=settings.multi_team)
        except Exception:
            return None

    def served(task: object) -> bool:
        """Whether core reads ``task``'s log from its worker's log server (no class-level reader answers it)."""
        executor = resolve(getattr(task, "ti", None))
        try:
            return executor is not None and pipeline.registry.read_path(executor).kind != ReadPath.READER
        except Exception:
            return False

    connect, read = settings.connect_timeout, settings.read_timeout
    network_started = time.monotonic()
    cluster_calls = [
        (cluster, Bounded(functools.partial(check_cluster, cluster, settings), "kubernetes"))
        for cluster in clusters(plans, running, resolve)
    ]
    served_tasks = [task for task in running if served(task)]
    served_call = Bounded(lambda: check_served_logs(served_tasks, settings), "served-logs")
    processes = check_processes(tmpdir)  # local work, done while the network checks wait
    for cluster, call in cluster_calls:
        try:
            results.append(call.result(read + connect + 0.5))
        except Exception as err:
            summary = f"the check did not finish: {type(err).__name__}: {err}"
            results.append(CheckResult("kubernetes", cluster.subject, FAIL, summary, "see the API server's logs"))
    try:
        store = store_call.result(2 * connect + 0.5)  # connect, then the first byte of the answer
    except Exception as err:
        store = CheckResult("remote-store", None, FAIL, f"the check did not finish: {type(err).__name__}: {err}")
    if store is not None:
        results.insert(2, store)
    if unreadable is not None:
        summary = f"cannot read the RUNNING task instances: {unreadable}"
        results.append(CheckResult("served-logs", None, FAIL, summary, "check [database] sql_alchemy_conn"))
    else:
        try:
            results.append(served_call.result(2 * connect + read + 1.0))
        except Exception as err:
            summary = f"the check did not finish: {type(err).__name__}: {err}"
            results.append(CheckResult("served-logs", None, FAIL, summary, "see the API server's logs"))
    network_seconds = time.monotonic() - network_started
    results.append(processes)
    return Report(results, network_seconds)


@contextlib.contextmanager
def _standard_output_to_standard_error() -> Iterator[None]:
    """
    While the checks run, what is written to standard output goes to standard error, at the descriptor too:
    Airflow and its plugins log there (3.2's alembic plugins at import), and ``--json`` must print one document.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run every check and print them (``--json``: one document); 0 all ok, 1 a ``fail``, 2 could not run."""
    quiet = out is None and getattr(args, "json", False)  # standard output is the document's alone
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    started = time.monotonic()
    try:
        with _standard_output_to_standard_error() if quiet else contextlib.nullcontext():
            report = collect(getattr(args, "tmpdir", None))
    except Exception as error:
        err.write(f"doctor check could not run: {type(error).__name__}: {error}\n")
        err.flush()
        return EXIT_COULD_NOT_RUN
    if getattr(args, "json", False):
        print_json(report.results, time.monotonic() - started, report.network_seconds, out)
    else:
        print_text(report.results, out)
    out.flush()
    return exit_code(report.results)
