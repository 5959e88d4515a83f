"""The RUNNING task instances the checks look at: at most :data:`LIMIT`, the newest first, read once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LIMIT", "RunningTask", "running_tasks"]

#: Task instances looked at, the most recently started first.
LIMIT = 50


@dataclass(frozen=True)
class RunningTask:
    """A RUNNING task instance (detached), with where core would ask its worker's log server for its log."""

    ti: Any
    #: ``http://<hostname>:<worker_log_server_port>/log/<file>`` as core builds it; ``None`` without a hostname.
    url: str | None
    #: The log file's path relative to the log folder, which core signs.
    rel_path: str | None

    @property
    def label(self) -> str:
        ti = self.ti
        index = "" if getattr(ti, "map_index", -1) in (-1, None) else f"[{ti.map_index}]"
        return f"{ti.dag_id}.{ti.task_id}{index} ({ti.run_id}, try {ti.try_number})"


def running_tasks(limit: int = LIMIT) -> list[RunningTask]:
    """Read the RUNNING task instances from the metadata database (read-only), with their log-server URLs."""
    from airflow.configuration import conf
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.file_task_handler import FileTaskHandler
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    handler = FileTaskHandler(base_log_folder=conf.get("logging", "base_log_folder"))
    query = (
        select(TaskInstance)
        .where(TaskInstance.state == TaskInstanceState.RUNNING)
        .order_by(TaskInstance.start_date.desc())
        .limit(limit)
        .options(joinedload(TaskInstance.dag_run))
    )
    found: list[RunningTask] = []
    with create_session() as session:
        for ti in session.scalars(query).unique():
            url, rel_path = _log_server_address(handler, ti, session)
            found.append(RunningTask(ti, url, rel_path))
        session.expunge_all()
        session.rollback()  # read-only: nothing of ours is committed
    return found


def _log_server_address(handler: Any, ti: Any, session: Any) -> tuple[str | None, str | None]:
    try:
        rel_path = handler._render_filename(ti, ti.try_number, session=session)
        url, rel_path = handler._get_log_retrieval_url(ti, rel_path)
    except Exception:
        return None, None
    return url, rel_path
