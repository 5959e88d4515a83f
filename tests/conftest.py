"""Test configuration: a private AIRFLOW_HOME with sqlite, set before Airflow is imported."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The kit's fixtures (fake_kube_api, fake_kubeconfig, ...) load by its pytest11 entry point, as for any user.

_HOME = Path(tempfile.mkdtemp(prefix="ael-airflow-home-"))
#: Only the process that made ``_HOME`` removes it (pytest_unconfigure): a forked child that runs this module's
#: hooks, or a pytest run in a subprocess that inherited ``AIRFLOW_HOME``, leaves it to that process.
_HOME_OWNER = os.getpid()
os.environ.setdefault("AIRFLOW_HOME", str(_HOME))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_HOME / 'airflow.db'}")
os.environ["AIRFLOW__CORE__EXECUTOR"] = "KubernetesExecutor"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_HOME / "dags"))
os.environ.setdefault("AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER", "False")
os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
# Keys of at least 64 bytes: PyJWT warns (InsecureKeyLengthWarning) below that for the SHA512 HMAC Airflow signs
# API tokens (jwt_secret) and log-server requests (secret_key, else a generated 24-byte one) with.
os.environ.setdefault(
    "AIRFLOW__API_AUTH__JWT_SECRET", "airflow-executor-logs-tests-jwt-secret-0123456789abcdef0123456789abcdef"
)
os.environ.setdefault(
    "AIRFLOW__API__SECRET_KEY", "airflow-executor-logs-tests-secret-key-0123456789abcdef0123456789abcdef"
)
os.environ.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(_HOME / "logs"))
# AEL_START_METHOD=forkserver runs the suite with that default start method, as Python 3.14 has it.
if os.environ.get("AEL_START_METHOD"):
    import multiprocessing

    multiprocessing.set_start_method(os.environ["AEL_START_METHOD"], force=True)
# Where the executor doubles of airflow_executor_logs_testing.executors record their constructions and ends.
os.environ["AEL_FAKE_EXECUTOR_JOURNAL"] = str(_HOME / "fake-executor-journal")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove this session's ``_HOME`` (the sqlite DB, task logs, the executor journal): nothing reads it after."""
    if os.getpid() == _HOME_OWNER:
        shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_executor_state() -> Iterator[None]:
    """Each test starts with Airflow's executor caches empty and a fresh process pipeline."""
    from tests.support.airflow_state import reset_executor_caches

    reset_executor_caches()
    yield
    reset_executor_caches()


# -- time per phase and per module, printed at the end of the run ----------------------------------------------
_PHASE_SECONDS: dict[tuple[str, str], float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    _PHASE_SECONDS[(module, report.when)] = _PHASE_SECONDS.get((module, report.when), 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Seconds per phase (setup, call, teardown) for each kind of test (tests/unit, ...) and the slowest modules."""
    if not _PHASE_SECONDS:
        return
    phases = ("setup", "call", "teardown")
    by_module: dict[str, dict[str, float]] = {}
    for (module, when), seconds in _PHASE_SECONDS.items():
        by_module.setdefault(module, dict.fromkeys(phases, 0.0))[when] += seconds
    by_dir: dict[str, dict[str, float]] = {}
    for module, times in by_module.items():
        totals = by_dir.setdefault("/".join(Path(module).parts[:2]), dict.fromkeys(phases, 0.0))
        for when in phases:
            totals[when] += times[when]
    write = terminalreporter.write_line
    terminalreporter.section("time per phase (s)")
    write(f"{'':52} {'setup':>8} {'call':>8} {'teardown':>8} {'total':>8}")
    for title, rows in (("directory", by_dir), ("slowest modules", by_module)):
        ordered = sorted(rows.items(), key=lambda item: -sum(item[1].values()))
        for name, times in ordered if title == "directory" else ordered[:8]:
            cells = " ".join(f"{times[when]:8.1f}" for when in phases)
            write(f"{name:52.52} {cells} {sum(times.values()):8.1f}")
        write("")
