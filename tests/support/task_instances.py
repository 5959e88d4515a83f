"""Task-instance stand-ins for reads that never touch the database."""

from __future__ import annotations

import types
import uuid
from typing import Any


def fake_ti(executor: str | None = None, **fields: Any) -> Any:
    """An object with the task-instance fields log readers use."""
    values: dict[str, Any] = {
        "executor": executor,
        "dag_id": "dag",
        "task_id": "task",
        "run_id": "manual__2026-01-01T00:00:00+00:00",
        "map_index": -1,
        "try_number": 1,
        "hostname": "worker-pod-1",
        "queued_by_job_id": 7,
        "executor_config": {},
        "id": str(uuid.uuid4()),
        "state": "running",
    }
    values.update(fields)
    return types.SimpleNamespace(**values)
