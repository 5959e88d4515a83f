"""Seeding the sandbox DB (``sandbox.seeding``): parameters, the commands run, their output; no Airflow run."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.support.processes import stopped_if_left
from tests.support.sandbox import seeding
from tests.support.sandbox.home import (
    DAG_ID,
    QUEUED_BY_JOB_ID,
    RUN_ID,
    TASK_ID,
    TI_HOSTNAME,
    SandboxError,
    dag_file_text,
    template,
)
from tests.support.sandbox.seeding import parse_seed_output, run_logged, seed_params, seed_running_task


def test_seed_params_list_the_main_run_first_and_refuse_duplicates() -> None:
    params = seed_params("KubernetesExecutor", [("other", "LocalExecutor"), ("none", None)])
    assert params == {
        "dag_id": DAG_ID,
        "task_id": TASK_ID,
        "runs": [
            {"run_id": RUN_ID, "executor": "KubernetesExecutor"},
            {"run_id": "other", "executor": "LocalExecutor"},
            {"run_id": "none", "executor": None},
        ],
        "hostname": TI_HOSTNAME,
        "queued_by_job_id": QUEUED_BY_JOB_ID,
    }
    with pytest.raises(SandboxError, match="unique"):
        seed_params("KubernetesExecutor", [(RUN_ID, None)])


def test_parse_seed_output_takes_the_last_json_line() -> None:
    out = 'log line\n{"ti_id": "old"}\nmore\n{"dag_version_id": "v", "ti_id": "t"}\n'
    assert parse_seed_output(out) == {"dag_version_id": "v", "ti_id": "t"}
    with pytest.raises(SandboxError, match="no result"):
        parse_seed_output("Traceback: nothing seeded\n")


def test_run_logged_returns_output_and_logs_it(tmp_path: Path) -> None:
    log = tmp_path / "commands.log"
    out = run_logged([sys.executable, "-c", "print('hello')"], env={}, cwd=tmp_path, log_path=log, timeout=30)
    assert out.strip() == "hello"
    assert "hello" in log.read_text()


def test_run_logged_raises_with_the_tail_on_failure(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    with pytest.raises(SandboxError, match=r"exited with 3:\nboom"):
        run_logged(cmd, env={}, cwd=tmp_path, log_path=tmp_path / "log", timeout=30)


def test_run_logged_stops_a_command_that_times_out(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    cmd = ["/bin/sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"]  # a shell starts in milliseconds
    with pytest.raises(SandboxError, match=r"timed out after 0\.5s"):
        run_logged(cmd, env={}, cwd=tmp_path, log_path=tmp_path / "log", timeout=0.5)
    pid = int(pid_file.read_text())
    assert stopped_if_left(pid)


def test_seed_running_task_writes_the_dag_migrates_reserializes_then_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[list[str], dict[str, str], Path, Path, float]] = []

    def fake_run_logged(
        cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout: float
    ) -> str:
        ran.append((list(cmd), dict(env), cwd, log_path, timeout))
        return 'seeding\n{"dag_version_id": "v1", "ti_id": "t1", "ti_id:other": "t2"}\n'

    monkeypatch.setattr(seeding, "run_logged", fake_run_logged)
    dags, log = tmp_path / "dags" / "nested", tmp_path / "seed.log"
    seeded = seed_running_task(
        {"E": "1"}, tmp_path, dags_folder=dags, log_path=log, timeout=12.0, extra_runs=[("other", None)]
    )
    assert seeded == {"dag_version_id": "v1", "ti_id": "t1", "ti_id:other": "t2"}
    airflow = str(Path(sys.executable).parent / "airflow")
    script = tmp_path / "seed_running_tis.py"
    params = json.dumps(seed_params("KubernetesExecutor", [("other", None)]))
    assert [cmd for cmd, *_ in ran] == [
        [airflow, "db", "migrate"],
        [sys.executable, str(script), params],  # it runs `airflow dags reserialize` first, in its process
    ]
    assert {(json.dumps(env), cwd, log_path, timeout) for _, env, cwd, log_path, timeout in ran} == {
        ('{"E": "1"}', tmp_path, log, 12.0)
    }
    assert (dags / f"{DAG_ID}.py").read_text() == dag_file_text()
    assert script.read_text() == template("seed_running_tis.py.tmpl")


def test_seed_running_task_refuses_duplicate_runs_before_running_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seeding, "run_logged", lambda *args, **kwargs: pytest.fail("nothing may run"))
    with pytest.raises(SandboxError, match="unique"):
        seed_running_task(
            {}, tmp_path, dags_folder=tmp_path / "dags", log_path=tmp_path / "log", extra_runs=[(RUN_ID, None)]
        )
    assert not (tmp_path / "dags").exists()


def test_a_new_sqlite_db_is_a_copy_of_one_migrated_earlier_with_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[list[str]] = []

    def fake_run_logged(
        cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout: float
    ) -> str:
        ran.append(list(cmd))
        db = seeding.sqlite_path(env)
        assert db is not None
        db.write_text(f"migrated by run {len(ran)}")
        return ""

    monkeypatch.setattr(seeding, "run_logged", fake_run_logged)
    monkeypatch.setattr(seeding, "_MIGRATED", {})

    def migrate(name: str, **settings: str) -> str:
        db = tmp_path / name
        env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}", **settings}
        seeding.migrate(env, airflow="airflow", cwd=tmp_path, log_path=tmp_path / "log", timeout=5)
        return db.read_text()

    assert migrate("first.db") == "migrated by run 1"
    assert migrate("second.db") == "migrated by run 1"  # copied: nothing ran
    assert migrate("first.db") == "migrated by run 2"  # an existing DB is migrated, as it may be behind
    assert migrate("pool.db", AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT="8") == "migrated by run 3"
    assert migrate("pool-too.db", AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT="8") == "migrated by run 3"
    assert ran == [["airflow", "db", "migrate"]] * 3
    assert "copied" in (tmp_path / "log").read_text()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////a/b.db", "/a/b.db"),
        ("sqlite:///", None),
        ("sqlite:////a.db?mode=ro", None),
        ("postgresql://x", None),
    ],
)
def test_sqlite_path(url: str, path: str | None) -> None:
    found = seeding.sqlite_path({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url})
    assert (str(found) if found else None) == path
