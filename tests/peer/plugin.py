"""
Runs the provider's task-log tests on one read path, chosen by ``AEL_PEER_HANDLER`` (``stock`` or ``ours``),
and writes each test's outcome to ``AEL_PEER_REPORT`` (JSON) for ``compare.py``.

With ``ours`` (``scripts/provider_tests.sh`` also sets our logging config, so ``TaskLogReader``'s handler is ours):

- a test module's own ``FileTaskHandler`` name is our ``ExecutorLogsFileTaskHandler``, so a handler the test
  builds itself is ours;
- ``KubernetesExecutor.get_task_log`` and ``get_streaming_task_log`` answer through our pipeline, as our handler
  reads a running task's log in place of the executor, so the executor's log tests assert on our reader;
- each test starts with a fresh pipeline (no client, pod or answer remembered from another test).

Nothing else changes: the provider's fixtures, mocks and assertions run as they are.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

MODE = os.environ.get("AEL_PEER_HANDLER", "stock")
if MODE not in ("stock", "ours"):
    raise pytest.UsageError(f"AEL_PEER_HANDLER must be 'stock' or 'ours', not {MODE!r}")

_OUTCOMES: dict[str, dict[str, str]] = {}


@pytest.fixture(autouse=True)
def _read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if MODE == "stock":
        yield
        return
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
    from airflow.utils.log.file_task_handler import FileTaskHandler

    from airflow_executor_logs.executors.log_pipeline import (
        ExecutorLogPipeline,
        process_pipeline,
        use_process_pipeline,
    )
    from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler

    module = request.module
    if getattr(module, "FileTaskHandler", None) is FileTaskHandler:
        monkeypatch.setattr(module, "FileTaskHandler", ExecutorLogsFileTaskHandler)

    def get_task_log(self: Any, ti: Any, try_number: int) -> Any:
        return process_pipeline().read(_OnExecutor(ti, self), try_number)

    def get_streaming_task_log(self: Any, ti: Any, try_number: int) -> Any:
        return process_pipeline().read_streaming(_OnExecutor(ti, self), try_number)

    monkeypatch.setattr(KubernetesExecutor, "get_task_log", get_task_log)
    monkeypatch.setattr(KubernetesExecutor, "get_streaming_task_log", get_streaming_task_log)
    previous = use_process_pipeline(ExecutorLogPipeline())
    try:
        yield
    finally:
        use_process_pipeline(previous)


class _OnExecutor:
    """
    ``ti`` as read on ``executor``: a task instance of the DB names its executor already; the executor tests' own
    stand-ins (``MagicMock``) do not, so the executor whose method the test calls is named for them.
    """

    def __init__(self, ti: Any, executor: Any) -> None:
        self._ti = ti
        named = getattr(ti, "executor", None)
        self.executor = named if isinstance(named, str) or named is None else type(executor).__name__

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ti, name)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    seen = _OUTCOMES.get(report.nodeid)
    if report.failed:
        text = str(report.longrepr)
        _OUTCOMES[report.nodeid] = {"outcome": "failed", "when": report.when, "text": text[-20000:]}
    elif seen is None and (report.when == "call" or report.skipped):
        _OUTCOMES[report.nodeid] = {"outcome": "skipped" if report.skipped else "passed", "when": report.when}


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("AEL_PEER_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            report = {"mode": MODE, "python": sys.version.split()[0], "package": _package(), "tests": _OUTCOMES}
            json.dump(report, out, indent=1)


def _package() -> str:
    """Where the read path's code was imported from: this checkout's ``src``, or an installed copy."""
    import airflow_executor_logs

    return os.path.dirname(airflow_executor_logs.__file__)
