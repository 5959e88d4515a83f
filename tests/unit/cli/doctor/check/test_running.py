"""Running tasks as the checks see them: a label, and where core would fetch the log (the DB read is integration)."""

from __future__ import annotations

from typing import Any

from airflow_executor_logs.cli.doctor.check.running import RunningTask, _log_server_address
from tests.support.task_instances import fake_ti


def test_label() -> None:
    assert RunningTask(fake_ti(run_id="r1", try_number=2), None, None).label == "dag.task (r1, try 2)"
    assert RunningTask(fake_ti(run_id="r1", map_index=3), None, None).label == "dag.task[3] (r1, try 1)"


def test_the_address_is_core_s_and_a_failure_is_none() -> None:
    class Handler:
        def _render_filename(self, ti: Any, try_number: int, *, session: Any) -> str:
            return f"dag_id={ti.dag_id}/attempt={try_number}.log"

        def _get_log_retrieval_url(self, ti: Any, rel_path: str) -> tuple[str | None, str | None]:
            return (f"http://{ti.hostname}:8793/log/{rel_path}", rel_path) if ti.hostname else (None, None)

    ti = fake_ti()
    assert _log_server_address(Handler(), ti, None) == (
        "http://worker-pod-1:8793/log/dag_id=dag/attempt=1.log",
        "dag_id=dag/attempt=1.log",
    )
    assert _log_server_address(Handler(), fake_ti(hostname=""), None) == (None, None)
    assert _log_server_address(object(), ti, None) == (None, None)  # a core without these: no address
