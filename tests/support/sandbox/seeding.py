"""Seeding the sandbox DB: migrate, serialize the DAG, create RUNNING task instances (all in subprocesses)."""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.process_control import stop_process_tree
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

#: ``(run_id, executor)``: one more DagRun of the sandbox DAG, its task instance RUNNING on ``executor``.
ExtraRun = tuple[str, str | None]

#: The settings whose values ``airflow db migrate`` writes into a new DB (log templates, the default pool, the DAG
#: bundles); with the ``airflow`` script they key the migrated sqlite DBs kept below.
MIGRATE_WRITES = (
    "AIRFLOW_CONFIG",
    "AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE",
    "AIRFLOW__ELASTICSEARCH__LOG_ID_TEMPLATE",
    "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT",
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
)
#: A freshly migrated sqlite DB per key, kept for this process: a later sandbox copies it instead of running
#: ``airflow db migrate`` again (an Airflow import and every migration, 10 to 30 s).
_MIGRATED: dict[tuple[str, ...], Path] = {}


def sqlite_path(env: Mapping[str, str]) -> Path | None:
    """The file of the sqlite DB ``env`` points at (``sqlite:///<path>``, no query), else ``None``."""
    url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or url == prefix:
        return None
    return Path(url[len(prefix) :])


def migrate(env: Mapping[str, str], *, airflow: str, cwd: Path, log_path: Path, timeout: float) -> None:
    """
    ``airflow db migrate`` the DB ``env`` points at, or, for a new sqlite DB, copy one migrated with the same
    ``airflow`` and ``MIGRATE_WRITES`` earlier in this process. A DB migrated here is kept for later ones.
    """
    db = sqlite_path(env)
    key = (airflow, *(env.get(name, "") for name in MIGRATE_WRITES))
    migrated = _MIGRATED.get(key)
    if db is not None and migrated is not None and not db.exists():
        shutil.copyfile(migrated, db)
        with log_path.open("a") as log:
            log.write(f"\n(db migrate: copied {migrated}, migrated earlier in this process)\n")
        return
    run_logged([airflow, "db", "migrate"], env=env, cwd=cwd, log_path=log_path, timeout=timeout)
    if db is not None and db.is_file() and key not in _MIGRATED:
        keep = Path(tempfile.mkdtemp(prefix="ael-migrated-"))
        atexit.register(shutil.rmtree, keep, ignore_errors=True)
        _MIGRATED[key] = keep / "airflow.db"
        shutil.copyfile(db, _MIGRATED[key])


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
    Migrate the DB ``env`` points at (``migrate``), then, in one more subprocess, serialize the sandbox DAG, unpause
    it and seed its RUNNING task instances.

    ``extra_runs`` are ``(run_id, executor)`` pairs: more DagRuns of the same DAG, each with its task
    instance RUNNING on ``executor`` (same hostname and ``queued_by_job_id`` as the main one).
    Works on Airflow 3.0 to 3.4; returns the ids the seeding printed (``dag_version_id``, ``ti_id``,
    and ``ti_id:<run_id>`` per extra run).
    """
    params = seed_params(executor, extra_runs)
    airflow = airflow_bin(sys.executable)
    dags_folder.mkdir(parents=True, exist_ok=True)
    (dags_folder / f"{DAG_ID}.py").write_text(dag_file_text())
    migrate(env, airflow=airflow, cwd=work_dir, log_path=log_path, timeout=timeout)
    script = work_dir / "seed_running_tis.py"
    script.write_text(template("seed_running_tis.py.tmpl"))
    cmd = [sys.executable, str(script), json.dumps(params)]
    return parse_seed_output(run_logged(cmd, env=env, cwd=work_dir, log_path=log_path, timeout=timeout))
