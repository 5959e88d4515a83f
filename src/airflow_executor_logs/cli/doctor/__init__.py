"""
``doctor``: find the ``multiprocessing`` Manager servers on this host, and reap the orphaned ones.

A Manager server is recognised by the listening ``pymp-*/listener-*`` unix socket it owns. It is
classified by its parent:

* ``orphaned``: its parent is gone (it was reparented to PID 1 or to an init/subreaper such as
  ``tini``), so nothing can use or shut it down any more. These are what ``--reap`` stops;
* ``airflow``: a live child of an Airflow process (API server master or worker, scheduler, ...),
  recognised by command line, including the titles gunicorn and Airflow give their processes;
* ``other``: a live child of anything else; only listed with ``--all``, never touched.

It also lists the short-lived executor helpers (zygotes) with the worker each serves, and reports (and
``--reap`` stops) those whose worker is gone (:mod:`.helpers`).

Modules: :mod:`.options` (help, options, exit codes), :mod:`.classify`, :mod:`.reap`, :mod:`.output` and
:mod:`.activation`; this package exports the command itself (:func:`run`, :func:`airflow_command`).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, TextIO

from airflow_executor_logs.cli.doctor.activation import check as check_activation
from airflow_executor_logs.cli.doctor.classify import KIND_OTHER, scan
from airflow_executor_logs.cli.doctor.helpers import HelperReport, find_helpers, reap_helpers
from airflow_executor_logs.cli.doctor.options import DEFAULT_GRACE, EXIT_INACTIVE, EXIT_OK, EXIT_ORPHANS
from airflow_executor_logs.cli.doctor.output import print_helpers, print_json, print_text, summarize
from airflow_executor_logs.cli.doctor.reap import ReapResult, reap

__all__ = ["airflow_command", "run"]


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the doctor for parsed ``args``; return the exit code."""
    out = out if out is not None else sys.stdout
    records = scan(getattr(args, "tmpdir", None))
    helpers = HelperReport(find_helpers(getattr(args, "tmpdir", None)))
    show_all = bool(getattr(args, "all", False))
    shown = [record for record in records if show_all or record.kind != KIND_OTHER]
    hidden = len(records) - len(shown)
    results: dict[int, ReapResult] | None = None
    if getattr(args, "reap", False):
        grace = float(getattr(args, "grace", DEFAULT_GRACE))
        results = {result.pid: result for result in reap(shown, grace)}
        helpers = HelperReport(helpers.records, reap_helpers(helpers.records, grace))
    summary = summarize(shown, hidden, None if results is None else list(results.values()))
    activation = check_activation()
    if getattr(args, "json", False):
        print_json(shown, results, summary, out, activation.as_dict(), helpers)
    else:
        print_text(shown, results, summary, out)
        print_helpers(helpers, out)
        out.write(activation.describe() + "\n")
    out.flush()
    if summary.exit_code or helpers.remaining:
        return EXIT_ORPHANS
    return EXIT_INACTIVE if activation.problem is None and activation.hook is None else EXIT_OK


def airflow_command(args: argparse.Namespace) -> NoReturn:
    """Entry for ``airflow executor-logs doctor``: Airflow's CLI ignores return values, so exit."""
    sys.exit(run(args))
