"""
How long ``doctor check`` takes when every network check hangs: ``python -m benchmarks.doctor_check``.

A sandbox Airflow (sqlite, migrated and seeded in subprocesses) with our logging config, a RUNNING
KubernetesExecutor task whose Kubernetes API (the loopback one) holds every request, and a RUNNING
LocalExecutor task whose worker log server (on 127.0.0.1) accepts the connection and never answers, and, where
the elasticsearch provider is installed (the 3.3.2 + 10.24.0 cell), remote logging on with an Elasticsearch
store that answers, then one that accepts connections and never answers. The check runs as an operator runs it,
``python -m airflow_executor_logs doctor check --json``, in its own process, ``--runs`` times. Measured: the check's
own time (the document's ``seconds``) and the process's wall time (interpreter start and Airflow's import included).
Target (issue 26): the check's time at most 3 x connect_timeout + read_timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_executor_logs_testing import FakeKubeAPI, Fault
from tests.support.log_server import LogServerDouble
from tests.support.remote_store import answering_store, hanging_store
from tests.support.sandbox import sandbox_env, seed_running_task
from tests.support.sandbox.home import API_SECRET_KEY
from tests.support.sandbox.seeding import run_logged

OURS = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
LOCAL_RUN = "executor_logs_demo__local"
#: Point the LocalExecutor task at 127.0.0.1 (the seeding gives every task the pod's hostname).
TO_LOOPBACK = """
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
with create_session() as session:
    session.query(TaskInstance).filter_by(run_id={run_id!r}).update({{"hostname": "127.0.0.1"}})
"""


def measure(runs: int, connect: float, read: float, work: Path) -> dict[str, Any]:
    """``runs`` checks with everything answering (the baseline), then ``runs`` with every network check hanging."""
    kubeconfig = work / "kubeconfig"
    with FakeKubeAPI() as kube, LogServerDouble(API_SECRET_KEY) as worker:
        kube.write_kubeconfig(kubeconfig)
        env = sandbox_env(
            dict(os.environ),
            root=work,
            kubeconfig=kubeconfig,
            logging_config_class=OURS,
            extra_env={
                "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor,LocalExecutor",
                "AIRFLOW__EXECUTOR_LOGS__CONNECT_TIMEOUT": str(connect),
                "AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT": str(read),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker.port),
            },
        )
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        log = work / "seed.log"
        seed_running_task(env, work, dags_folder=work / "dags", log_path=log, extra_runs=[(LOCAL_RUN, "LocalExecutor")])
        script = work / "to_loopback.py"
        script.write_text(TO_LOOPBACK.format(run_id=LOCAL_RUN))
        run_logged([sys.executable, str(script)], env=env, cwd=work, log_path=log, timeout=120)
        with store(answering_store) as remote:
            healthy = [_one_check({**env, **remote}, work) for _ in range(runs)]
        kube.inject("*", Fault.hang())  # /version, the access reviews: every request is held
        worker.hang = True  # accepts the connection, reads the request, never answers
        with store(hanging_store) as remote:
            samples = [_one_check({**env, **remote}, work) for _ in range(runs)]
    target = 3 * connect + read
    seconds = [sample["seconds"] for sample in samples]
    network = [sample["network"] for sample in samples]
    return {
        "connect_timeout": connect,
        "read_timeout": read,
        "target_seconds": target,
        "check_seconds": seconds,
        "network_seconds": network,
        "healthy_check_seconds": [sample["seconds"] for sample in healthy],
        "healthy_statuses": healthy[-1]["statuses"],
        "process_seconds": [sample["wall"] for sample in samples],
        "worst_network_seconds": max(network),
        "within_target": max(network) <= target,
        "statuses": samples[-1]["statuses"],
    }


@contextlib.contextmanager
def store(kind: Any) -> Any:
    """Remote logging on with an Elasticsearch store of ``kind`` (its environment), or nothing without the provider."""
    if importlib.util.find_spec("airflow.providers.elasticsearch") is None:
        yield {}
        return
    with kind() as port:
        yield {"AIRFLOW__LOGGING__REMOTE_LOGGING": "True", "AIRFLOW__ELASTICSEARCH__HOST": f"http://127.0.0.1:{port}"}


def _one_check(env: dict[str, str], work: Path) -> dict[str, Any]:
    profile = ["-m", "cProfile", "-o", "/tmp/ael-doctor.prof"] if os.environ.get("AEL_PROFILE") else []
    cmd = [
        sys.executable,
        *profile,
        "-m",
        "airflow_executor_logs",
        "doctor",
        "check",
        "--json",
        "--tmpdir",
        str(work / "tmp"),
    ]
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=120, check=False)
    wall = time.monotonic() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"doctor check exited {done.returncode}:\n{done.stderr[-3000:]}")
    document = json.loads(done.stdout)
    statuses = {
        f"{c['check']} {c['subject'] or ''}".strip(): f"{c['status']}: {c['summary']}" for c in document["checks"]
    }
    return {
        "seconds": document["seconds"],
        "network": document["network_seconds"],
        "wall": round(wall, 3),
        "statuses": statuses,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.doctor_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="checks to time (default 3)")
    parser.add_argument("--connect-timeout", type=float, default=1.0, help="[executor_logs] connect_timeout")
    parser.add_argument("--read-timeout", type=float, default=5.0, help="[executor_logs] read_timeout")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ael-doctor-bench-") as tmp:
        result = measure(args.runs, args.connect_timeout, args.read_timeout, Path(tmp))
    for title, statuses in (("all answering", "healthy_statuses"), ("every network check hanging", "statuses")):
        print(f"{title}:")
        for name, line in result[statuses].items():
            print(f"  {name}: {line}")

    def seconds(key: str) -> str:
        return ", ".join(f"{value:.2f}" for value in result[key])

    print(
        f"doctor check with every network check hanging (connect_timeout {args.connect_timeout:g} s, read_timeout "
        f"{args.read_timeout:g} s), {args.runs} run(s): network checks {seconds('network_seconds')} s "
        f"(target <= {result['target_seconds']:g} s: {'met' if result['within_target'] else 'MISSED'}); "
        f"whole check {seconds('check_seconds')} s (all answering: {seconds('healthy_check_seconds')} s); "
        f"process {seconds('process_seconds')} s"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
