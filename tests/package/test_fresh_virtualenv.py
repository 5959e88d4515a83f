"""The built wheel, installed without ``-e`` into a fresh virtualenv of the first primary cell.

No source checkout on any path there: pytest runs in an unrelated directory, as a user's DAG tests would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".venvs" / "uv" / "bin" / "uv"
PLUGIN = "airflow_executor_logs_testing.pytest_plugin"


def _first_primary_cell() -> str:
    match = re.search(r"^MATRIX_CELLS=\((\S+)", (REPO / "scripts" / "lib.sh").read_text(), re.MULTILINE)
    assert match is not None, "scripts/lib.sh declares no MATRIX_CELLS"
    return match.group(1)


@dataclass
class FreshVenv:
    python: Path
    site_packages: Path
    env: dict[str, str]

    def pytest(self, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Run pytest with the fresh interpreter in ``workdir`` (no cache, a 5-minute limit)."""
        command = [str(self.python), "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
        return subprocess.run(command, cwd=workdir, env=self.env, capture_output=True, text=True, timeout=300)


def _run(*command: str | Path) -> None:
    started = time.monotonic()
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    print(f"[fresh-venv] {Path(str(command[0])).name} {command[1]}: {time.monotonic() - started:.1f}s")


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshVenv]:
    """Build the wheel, then a virtualenv from the cell's lock with the wheel installed (removed afterwards)."""
    cell, primary = Path(sys.prefix).name, _first_primary_cell()
    if cell != primary:
        pytest.skip(f"the wheel is tested on {primary} only (this is {cell})")
    if not UV.is_file():
        pytest.skip(f"no uv at {UV} (scripts/lib.sh installs it)")
    root = tmp_path_factory.mktemp("fresh-venv")
    venv = root / "venv"
    try:
        _run(UV, "build", "--quiet", "--wheel", "--out-dir", root / "dist", REPO)
        (wheel,) = (root / "dist").glob("airflow_executor_logs-*.whl")
        _run(UV, "venv", "--quiet", "--python", sys.executable, venv)
        python = venv / "bin" / "python"
        _run(UV, "pip", "sync", "--quiet", "--python", python, REPO / "constraints" / f"{cell}.txt")
        _run(UV, "pip", "install", "--quiet", "--no-deps", "--python", python, wheel)
        home = root / "airflow-home"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        yield FreshVenv(python=python, site_packages=Path(site.stdout.strip()), env=env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_an_unrelated_pytest_session_does_not_load_the_plugin(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    work = tmp_path / "someone-elses-dags"
    _write(
        work,
        "test_theirs.py",
        f"""
        import importlib.metadata
        import sys

        import airflow_executor_logs


        def test_the_installed_wheel_is_imported_and_no_plugin_is(request):
            assert airflow_executor_logs.__file__.startswith({str(fresh_venv.site_packages)!r})
            assert not request.config.pluginmanager.has_plugin({PLUGIN!r})
            assert {PLUGIN!r} not in sys.modules
            ours = [e for e in importlib.metadata.entry_points(group="pytest11") if "airflow_executor_logs" in e.value]
            assert ours == []


        def test_our_fixture_is_unknown(fake_kube_api):
            pass
        """,
    )
    done = fresh_venv.pytest(work)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "fixture 'fake_kube_api' not found" in done.stdout, done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("1 passed, 1 error"), done.stdout


def test_with_the_plugin_a_test_serves_a_pod_and_reads_it_through_our_handler(
    fresh_venv: FreshVenv, tmp_path: Path
) -> None:
    work = tmp_path / "user-tests"
    _write(
        work,
        "test_kit.py",
        """
        import types

        from airflow_executor_logs_testing import serve_task_pod
        from airflow_executor_logs.utils.log.executor_log_reader import ExecutorLogsFileTaskHandler


        def test_reads_the_running_task_pod(fake_kube_executor, tmp_path):
            ti = types.SimpleNamespace(
                executor="KubernetesExecutor", dag_id="dag", task_id="task", run_id="run", map_index=-1,
                try_number=1, hostname="task-1-pod", queued_by_job_id=7, executor_config={},
                id="0199a6c8-0000-7000-8000-000000000001", state="running",
            )
            serve_task_pod(fake_kube_executor, ti, 1, ["hello from the pod", "second line"])
            handler = ExecutorLogsFileTaskHandler(base_log_folder=str(tmp_path))
            messages, logs = handler._get_executor(ti).get_task_log(ti, 1)
            assert messages[-1] == "Found logs through kube API"
            assert [line for line in logs[0].splitlines() if line][-2:] == ["hello from the pod", "second line"]
            assert [r.route for r in fake_kube_executor.requests] == ["list", "log"]
        """,
    )
    done = fresh_venv.pytest(work, "-p", PLUGIN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("1 passed"), done.stdout


def test_the_sandbox_starts_and_stops_an_api_server(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    work = tmp_path / "sandbox-user"
    script = _write(
        work,
        "start_stop.py",
        """
        import sys
        from pathlib import Path

        import psutil

        from airflow_executor_logs_testing import FakeKubeProcess
        from tests.support.sandbox import AirflowSandbox

        def gone(pid):
            return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

        kubeconfig = Path(sys.argv[1]) / "kubeconfig"
        with FakeKubeProcess(kubeconfig), AirflowSandbox(kubeconfig=kubeconfig) as sandbox:
            # One worker: the kit works from the wheel all the same, in half the time (start, and a stop
            # without the 10 s grace a second uvicorn worker takes).
            with sandbox.api_server(workers=1) as server:
                pid = server.pid
                assert pid is not None and psutil.pid_exists(pid)
                response = server.fetch_task_log()
                assert response.status_code == 200, response.text[:500]
                tree = server.tree_pids()
                assert pid in tree
            assert [p for p in tree if not gone(p)] == []
        print("sandbox ok")
        """,
    )
    done = subprocess.run(
        [str(fresh_venv.python), str(script), str(work)],
        cwd=work,
        env=fresh_venv.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "sandbox ok"
