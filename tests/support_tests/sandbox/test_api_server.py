"""``ApiServer`` (``sandbox.api_server``): its command and environment, and start/stop of a stand-in server.

The stand-in is a script in place of ``airflow``: no real api-server starts here (tests/package starts one).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_executor_logs.utils.processes import is_gone
from tests.support.sandbox import DAG_ID, RUN_ID, TASK_ID, AirflowSandbox, SandboxError, task_log_path

#: Serves the health check on the port it is given (``api-server -H HOST -p PORT ...``); its child ignores its exit.
STAND_IN = """\
import http.server, subprocess, sys

port = int(sys.argv[sys.argv.index("-p") + 1])
subprocess.Popen(["sleep", "60"])


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/v2/monitor/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[AirflowSandbox]:
    prepared = AirflowSandbox(base_dir=tmp_path, logging_config_class="my.LOGGING").prepare()
    try:
        yield prepared
    finally:
        prepared.cleanup()


def _stand_in(sandbox: AirflowSandbox, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    script = sandbox.root / "airflow"
    script.write_text(f"#!{sys.executable}\n{textwrap.dedent(body)}")
    script.chmod(0o755)
    monkeypatch.setattr(AirflowSandbox, "airflow_bin", property(lambda self: str(script)))


def test_the_server_command_and_its_environment(sandbox: AirflowSandbox) -> None:
    server = sandbox.api_server(
        workers=3,
        server_type="gunicorn",
        worker_refresh_interval=7,
        worker_refresh_batch_size=2,
        worker_timeout=30,
        port=12345,
        extra_env={"AIRFLOW__API__PORT": "overridden", "X": "1"},
    )
    assert server.command()[3:] == [
        sandbox.airflow_bin, "api-server", "-H", "127.0.0.1", "-p", "12345", "--workers", "3", "--worker-timeout", "30"
    ]  # fmt: skip
    env = server.env()
    assert env["TMPDIR"] == str(Path(sandbox.tmpdir) / "api-12345")  # its own: Managers are attributed to it
    assert {k: env[k] for k in env if k.startswith("AIRFLOW__API__")} == {
        "AIRFLOW__API__SECRET_KEY": sandbox.env["AIRFLOW__API__SECRET_KEY"],
        "AIRFLOW__API__SERVER_TYPE": "gunicorn",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": "overridden",  # extra_env wins
        "AIRFLOW__API__BASE_URL": "http://127.0.0.1:12345",
        "AIRFLOW__API__WORKER_REFRESH_INTERVAL": "7",
        "AIRFLOW__API__WORKER_REFRESH_BATCH_SIZE": "2",
    }
    assert env["X"] == "1"
    assert env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] == "my.LOGGING"  # the sandbox's environment underneath
    assert server.task_log_path(2, run_id="r") == task_log_path(DAG_ID, "r", TASK_ID, 2)
    assert server.task_log_path() == f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{TASK_ID}/logs/1"


def test_defaults_and_a_server_never_started(sandbox: AirflowSandbox) -> None:
    server = sandbox.api_server()
    assert server.command()[-2:] == ["--workers", "2"]
    env = server.env()
    assert (env["AIRFLOW__API__SERVER_TYPE"], "AIRFLOW__API__WORKER_REFRESH_INTERVAL" in env) == ("uvicorn", False)
    assert (server.pid, server.running, server.process_tree(), server.worker_pids(), server.log_text()) == (
        None,
        False,
        [],
        [],
        "",
    )
    server.stop()  # nothing started: nothing to stop
    server.stop()


def test_a_server_that_exits_fails_its_start_with_the_log_and_is_stopped(
    sandbox: AirflowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in(sandbox, monkeypatch, "print('cannot start: port taken'); raise SystemExit(3)\n")
    server = sandbox.api_server()
    with (
        pytest.raises(SandboxError, match=r"api-server exited with 3:\n\$ .* api-server .*\ncannot start: port taken"),
        server,
    ):
        pytest.fail("the block must not run")
    assert sandbox._servers == []  # untracked by stop()
    with pytest.raises(SandboxError, match="already started"):
        server.start()


def test_start_waits_for_health_and_stop_ends_the_whole_tree(
    sandbox: AirflowSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in(sandbox, monkeypatch, STAND_IN)
    with sandbox.api_server() as server:
        assert server.running
        assert server.ready_after is not None
        assert server.pid is not None
        tree = server.tree_pids()
        assert server.pid in tree
        assert len(tree) == 2  # the stand-in and its sleeping child
        assert server.worker_pids() == [server.pid]  # one process listens: it is the worker
        assert sandbox._servers == [server]
        assert "serving" in server.log_text()
        server.stop(grace=0.2)  # the child outlives its parent's SIGTERM: killed after the grace
        assert [pid for pid in tree if not is_gone(pid)] == []
        assert (server.running, sandbox._servers) == (False, [])
    server.stop()  # again on the way out: idempotent


#: Notes each time it runs: as the main script, or re-imported by a ``multiprocessing`` spawn child (as uvicorn's
#: workers are started on Airflow 3.0 and 3.1).
SPAWNS_A_CHILD = """\
import multiprocessing, os, sys

with open(os.environ["RUNS_NOTED_IN"], "a") as notes:
    notes.write(__name__ + "\\n")
if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=os.getpid)
    child.start()
    child.join()
    sys.exit(child.exitcode)
"""


def test_spawned_workers_do_not_import_the_airflow_script_again(
    sandbox: AirflowSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker that first imports all of Airflow's CLI misses uvicorn's 5 s ping on a loaded machine."""
    _stand_in(sandbox, monkeypatch, SPAWNS_A_CHILD)
    notes = tmp_path / "runs"
    server = sandbox.api_server()
    done = subprocess.run(
        server.command(), env={**server.env(), "RUNS_NOTED_IN": str(notes)}, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert notes.read_text().splitlines() == ["__main__"]  # the child ran without re-importing the script
