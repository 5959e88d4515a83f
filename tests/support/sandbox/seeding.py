"""Seeding the sandbox DB: migrate, serialize the DAG, create RUNNING task instances (all in subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from airflow_executor_logs.utils.processes import stop_process_tree
from tests.support.sandbox.home import (
    DAG_ID,
    QUEUED_BY_JOB_ID,
    RUN_ID,
    TASK_ID,
    TI_HOSTNAME,
    SandboxError,
    airflow_bin,
    dag_file_text,
    template,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

#: ``(run_id, executor)``: one more DagRun of the sandbox DAG, its task instance RUNNING on ``executor``.
ExtraRun = tuple[str, str | None]


def run_logged(cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout: float) -> str:
    """Run ``cmd`` in its own session, append its output to ``log_path``; stop its tree on timeout."""
    with log_path.open("ab") as log, tempfile.TemporaryFile() as out:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SandboxError(f"{cmd!r} timed out after {timeout}s (log: {log_path})") from None
        finally:
            stop_process_tree(proc, grace=5.0)  # no-op once it has exited
            out.seek(0)
            output = out.read()
            log.write(output)
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            tail = "\n".join(text.splitlines()[-40:])
            raise SandboxError(f"{cmd!r} exited with {proc.returncode}:\n{tail}")
        return text


def seed_params(executor: str | None, extra_runs: Sequence[ExtraRun] = ()) -> dict[str, Any]:
    """The seed script's parameters: the main run on ``executor``, then ``extra_runs``; run ids must be unique."""
    runs = [(RUN_ID, executor), *extra_runs]
    run_ids = [run_id for run_id, _ in runs]
    if len(set(run_ids)) != len(run_ids):
        raise SandboxError(f"run ids must be unique: {run_ids}")
    return {
        "dag_id": DAG_ID,
        "task_id": TASK_ID,
        "runs": [{"run_id": run_id, "executor": run_executor} for run_id, run_executor in runs],
        "hostname": TI_HOSTNAME,
        "queued_by_job_id": QUEUED_BY_JOB_ID,
    }


def parse_seed_output(output: str) -> dict[str, str]:
    """The ids the seed script printed on its last JSON line (``dag_version_id``, ``ti_id``, ``ti_id:<run>``)."""
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise SandboxError(f"seeding printed no result:\n{output[-2000:]}")
    return {str(k): str(v) for k, v in json.loads(lines[-1]).items()}


def seed_running_task(
    env: Mapping[str, str],
    work_dir: Path,
    *,
    dags_folder: Path,
    log_path: Path,
    executor: str | None = "KubernetesExecutor",
    timeout: float = 300.0,
    extra_runs: Sequence[ExtraRun] = (),
) -> dict[str, str]:
    """
    Migrate the DB ``env`` points at, serialize the sandbox DAG, unpause it and seed its RUNNING task instances.

    ``extra_runs`` are ``(run_id, executor)`` pairs: more DagRuns of the same DAG, each with its task
    instance RUNNING on ``executor`` (same hostname and ``queued_by_job_id`` as the main one).
    Works on Airflow 3.0 to 3.4; returns the ids the seeding printed (``dag_version_id``, ``ti_id``,
    and ``ti_id:<run_id>`` per extra run).
    """
    params = seed_params(executor, extra_runs)
    airflow = airflow_bin(sys.executable)
    dags_folder.mkdir(parents=True, exist_ok=True)
    (dags_folder / f"{DAG_ID}.py").write_text(dag_file_text())
    for args in (("db", "migrate"), ("dags", "reserialize")):
        run_logged([airflow, *args], env=env, cwd=work_dir, log_path=log_path, timeout=timeout)
    script = work_dir / "seed_running_tis.py"
    script.write_text(template("seed_running_tis.py.tmpl"))
    cmd = [sys.executable, str(script), json.dumps(params)]
    return parse_seed_output(run_logged(cmd, env=env, cwd=work_dir, log_path=log_path, timeout=timeout))
