"""Both distributions, the package's and the test kit's, built as a user's installer builds them: an sdist from
the checkout, then a wheel from that sdist alone, installed without ``-e`` into a fresh virtualenv.

The virtualenv is the first primary cell's lock. No source checkout on any path there: pytest runs in an
unrelated directory, as a user's DAG tests would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
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
    package_wheel: Path
    kit_wheel: Path

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
    """Build both wheels, then a virtualenv from the cell's lock with both installed (removed afterwards)."""
    cell, primary = Path(sys.prefix).name, _first_primary_cell()
    if cell != primary:
        pytest.skip(f"the wheel is tested on {primary} only (this is {cell})")
    if not UV.is_file():
        pytest.skip(f"no uv at {UV} (scripts/lib.sh installs it)")
    root = tmp_path_factory.mktemp("fresh-venv")
    venv = root / "venv"
    try:
        for project, name in ((REPO, "airflow_executor_logs"), (REPO / "kit", "airflow_executor_logs_testing")):
            # The sdist must hold everything its wheel needs: the wheel is built from it, in its own directory.
            _run(UV, "build", "--quiet", "--sdist", "--out-dir", root / "sdist", project)
            (sdist,) = (root / "sdist").glob(f"{name}-*.tar.gz")
            _run(UV, "build", "--quiet", "--wheel", "--out-dir", root / "dist", sdist)
        (package_wheel,) = (root / "dist").glob("airflow_executor_logs-*.whl")
        (kit_wheel,) = (root / "dist").glob("airflow_executor_logs_testing-*.whl")
        _run(UV, "venv", "--quiet", "--python", sys.executable, venv)
        python = venv / "bin" / "python"
        _run(UV, "pip", "sync", "--quiet", "--python", python, REPO / "constraints" / f"{cell}.txt")
        _run(UV, "pip", "install", "--quiet", "--no-deps", "--python", python, package_wheel, kit_wheel)
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
        yield FreshVenv(python, Path(site.stdout.strip()), env, package_wheel, kit_wheel)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def wheel_metadata(wheel: Path) -> tuple[list[str], str, str]:
    """The wheel's file names, its ``METADATA`` and its ``entry_points.txt`` (empty if none)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = {name.split("/")[0] for name in names if ".dist-info/" in name}.pop()
        entry_points = f"{dist_info}/entry_points.txt"
        return (
            names,
            archive.read(f"{dist_info}/METADATA").decode(),
            archive.read(entry_points).decode() if entry_points in names else "",
        )


def test_the_package_wheel_ships_no_test_code_and_no_pytest_plugin(fresh_venv: FreshVenv) -> None:
    names, _, entry_points = wheel_metadata(fresh_venv.package_wheel)
    assert "airflow_executor_logs/__init__.py" in names
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"airflow_executor_logs"}
    assert [name for name in names if "/testing/" in name or "sandbox" in name or "pytest" in name] == []
    assert "[pytest11]" not in entry_points


def test_the_kit_wheel_pins_the_package_and_registers_its_plugin(fresh_venv: FreshVenv) -> None:
    _, package_metadata, _ = wheel_metadata(fresh_venv.package_wheel)
    names, metadata, entry_points = wheel_metadata(fresh_venv.kit_wheel)
    (version,) = re.findall(r"^Version: (\S+)$", package_metadata, re.MULTILINE)
    assert re.search(rf"^Requires-Dist: airflow-executor-logs=={re.escape(version)}$", metadata, re.MULTILINE)
    assert f"[pytest11]\n{PLUGIN} = {PLUGIN}" in entry_points
    assert "airflow_executor_logs_testing/pytest_plugin.py" in names
    assert [name for name in names if name.startswith(("airflow_executor_logs/", "tests/"))] == []


def test_a_plain_pytest_session_gets_the_fixtures_serves_a_pod_and_reads_it_through_our_handler(
    fresh_venv: FreshVenv, tmp_path: Path
) -> None:
    work = tmp_path / "user-tests"  # no conftest, no -p: the kit's entry point brings the fixtures
    _write(
        work,
        "test_kit.py",
        """
        import types

        import airflow_executor_logs
        import airflow_executor_logs_testing
        from airflow_executor_logs_testing import serve_task_pod
        from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler


        def test_both_packages_are_the_installed_wheels():
            assert airflow_executor_logs.__file__.startswith(SITE)
            assert airflow_executor_logs_testing.__file__.startswith(SITE)


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
    test_file = work / "test_kit.py"
    test_file.write_text(f"SITE = {str(fresh_venv.site_packages)!r}\n" + test_file.read_text())
    done = fresh_venv.pytest(work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("2 passed"), done.stdout


def test_the_installed_wheels_serve_an_api_server_driven_by_the_checkouts_sandbox(
    fresh_venv: FreshVenv, tmp_path: Path
) -> None:
    """The sandbox is in no wheel: this script takes it from the checkout, and only it (the api-server and
    the kit's process import what the virtualenv installed). Beside that server, the installed
    ``airflow-executor-logs doctor check`` gives the checkout's results."""
    work = tmp_path / "sandbox-user"
    script = _write(
        work,
        "start_stop.py",
        """
        import json
        import subprocess
        import sys
        from pathlib import Path

        import psutil

        import airflow_executor_logs
        from airflow_executor_logs_testing import FakeKubeProcess

        sys.path.insert(0, sys.argv[2])  # the checkout, for tests.support only (no src/ there)
        from tests.support.sandbox import AirflowSandbox

        assert "site-packages" in airflow_executor_logs.__file__, airflow_executor_logs.__file__

        def gone(pid):
            return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

        def doctor_check(command, server):
            done = subprocess.run(
                [*command, "doctor", "check", "--json", "--tmpdir", server.tmpdir],
                env=server.env(), capture_output=True, text=True, timeout=180,
            )
            assert done.returncode in (0, 1), done.stderr[-3000:]
            checks = json.loads(done.stdout)["checks"]
            return done.returncode, sorted((c["check"], c["subject"] or "", c["status"]) for c in checks)

        kubeconfig = Path(sys.argv[1]) / "kubeconfig"
        ours = "airflow_executor_logs.logging_config.LOGGING_CONFIG"  # the installed wheel's handler serves
        with FakeKubeProcess(kubeconfig), AirflowSandbox(kubeconfig=kubeconfig, logging_config_class=ours) as sandbox:
            # One worker: the kit works from the wheel all the same, in half the time (start, and a stop
            # without the 10 s grace a second uvicorn worker takes).
            with sandbox.api_server(workers=1) as server:
                pid = server.pid
                assert pid is not None and psutil.pid_exists(pid)
                response = server.fetch_task_log()
                assert response.status_code == 200, response.text[:500]
                # The installed console script, and the checkout's module in the cell: the same checks, same results.
                installed = doctor_check([str(Path(sys.executable).with_name("airflow-executor-logs"))], server)
                checkout = doctor_check([sys.argv[3], "-m", "airflow_executor_logs"], server)
                assert installed == checkout, (installed, checkout)
                assert ("enabled", "", "ok") in installed[1], installed
                assert ("kubernetes", "default", "ok") in installed[1], installed
                print("doctor check:", json.dumps(installed))
                tree = server.tree_pids()
                assert pid in tree
                assert sandbox.managers() == []  # no executor was built to read the running task's log
            assert [p for p in tree if not gone(p)] == []
        print("sandbox ok")
        """,
    )
    done = subprocess.run(
        [str(fresh_venv.python), str(script), str(work), str(REPO), sys.executable],
        cwd=work,
        env=fresh_venv.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "sandbox ok"
