"""
Reads of the seeded RUNNING task through the real log endpoint, in a process of its own: Airflow builds its
task handler and ``REMOTE_TASK_LOG`` from ``[logging]`` / ``[elasticsearch]`` / ``[opensearch]`` at import, so
each remote store is a fresh process configured by its environment. Writes what it saw as JSON.

    python -m tests.integration.remote_logging_driver OUT.json {ours,stock,user} READS [--doctor]
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

CONFIGS = {
    "ours": "airflow_executor_logs.logging_config.LOGGING_CONFIG",
    "stock": "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG",
    "user": "tests.support.user_logging_config.LOGGING_CONFIG",
}


def _import(path: str) -> Any:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _log_pos(token: str | None) -> int | None:
    if not token:
        return None
    from airflow.configuration import conf
    from itsdangerous import URLSafeSerializer

    return int(URLSafeSerializer(conf.get_mandatory_value("api", "secret_key")).loads(token)["log_pos"])


def _doctor() -> dict[str, Any]:
    from airflow_executor_logs.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["doctor", "check", "--json"])
    return {"code": code, "document": json.loads(out.getvalue())}


def run(kind: str, reads: int, doctor: bool) -> dict[str, Any]:
    from airflow.logging_config import get_remote_task_log
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    from tests.integration.endpoint import log_endpoint
    from tests.support.sandbox import DAG_ID, RUN_ID, TASK_ID

    seen: dict[str, Any] = {"remote_task_log": type(get_remote_task_log()).__name__, "reads": []}
    build = mock.patch.object(KubernetesExecutor, "__init__", autospec=True, side_effect=KubernetesExecutor.__init__)
    with build as init, log_endpoint(DAG_ID, TASK_ID, _import(CONFIGS[kind]), raise_server_exceptions=False) as api:
        handler = logging.getLogger("airflow.task").handlers[0]
        seen["handler_mro"] = [cls.__name__ for cls in type(handler).__mro__]
        token = None
        for _ in range(reads):
            url = f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{TASK_ID}/logs/1"
            started = time.monotonic()
            response = api.client.get(
                url, headers={**api.headers, "Accept": "application/json"}, params={"token": token} if token else {}
            )
            elapsed = time.monotonic() - started
            body = response.json() if response.status_code == 200 else {}
            token = body.get("continuation_token") or token
            seen["reads"].append(
                {
                    "status": response.status_code,
                    "elapsed": elapsed,
                    "content": body.get("content", []),
                    "text": response.text[:2000] if response.status_code != 200 else "",
                    "log_pos": _log_pos(body.get("continuation_token")),
                    "reader_threads": sum(t.name.startswith("executor-logs-reader-") for t in threading.enumerate()),
                }
            )
        seen["executors_built"] = init.call_count
    if doctor:
        seen["doctor"] = _doctor()
    return seen


if __name__ == "__main__":
    out, kind, reads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    Path(out).write_text(json.dumps(run(kind, reads, "--doctor" in sys.argv[4:]), default=str))
