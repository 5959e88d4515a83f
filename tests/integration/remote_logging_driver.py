"""
Reads of the seeded RUNNING task through the real log endpoint, in a process of its own: Airflow builds
``REMOTE_TASK_LOG`` from ``[logging]`` / ``[elasticsearch]`` / ``[opensearch]`` at import, so each store kind and
logging config is a fresh process configured by its environment. The store is this process's own
``switchable_store``, on one port set before Airflow is imported; each case tells it to refuse, answer or hang,
then reads with a fresh task handler (the config applied anew), a fresh pipeline and no executor remembered.
Writes what each case saw as JSON, a list in the cases' order.

    python -m tests.integration.remote_logging_driver OUT.json {ours,stock,user} {elasticsearch,opensearch} \
        MODE:READS[:doctor]...

MODE is ``refusing`` (only first: see ``SwitchableStore``), ``answering`` or ``hanging``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
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


def point_airflow_at(store: str, port: int) -> None:
    """``[elasticsearch] host`` or ``[opensearch] host`` and ``port``: 127.0.0.1:``port`` (before Airflow's import)."""
    if store == "elasticsearch":
        os.environ["AIRFLOW__ELASTICSEARCH__HOST"] = f"http://127.0.0.1:{port}"
    else:
        os.environ["AIRFLOW__OPENSEARCH__HOST"] = "127.0.0.1"
        os.environ["AIRFLOW__OPENSEARCH__PORT"] = str(port)


def main(argv: list[str]) -> list[dict[str, Any]]:
    out, kind, store, cases = argv[0], argv[1], argv[2], argv[3:]
    from tests.support.remote_store import switchable_store

    seen = []
    with switchable_store() as remote:
        assert "airflow" not in sys.modules, "Airflow was imported before its store address was set"
        point_airflow_at(store, remote.port)
        for case in cases:
            mode, reads, *flags = case.split(":")
            remote.become(mode)
            from tests.support.airflow_state import reset_executor_caches

            reset_executor_caches()  # as between two tests: a fresh pipeline, no executor remembered
            seen.append({"mode": mode, **run(kind, int(reads), "doctor" in flags)})
            Path(out).write_text(json.dumps(seen, default=str))  # the cases so far, if a later one fails
    return seen


if __name__ == "__main__":
    main(sys.argv[1:])
