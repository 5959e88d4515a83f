"""
The main job: a real ``airflow api-server`` twice, stock and with airflow-executor-logs, side by side.

Both runs serve the same RUNNING KubernetesExecutor task from a loopback Kubernetes API, with worker
recycling, and are measured the same way: gunicorn's worker refresh where the core offers ``[api]
server_type`` (3.2 and later), otherwise uvicorn workers SIGKILLed every ``--refresh`` seconds (uvicorn's
supervisor starts new ones). Everything started is stopped by PID.

With ``--ui`` it shows what a person sees instead: the Logs tab of the running task in the real Airflow UI
(headless Debian chromium, see ``tests/support/browser.py``), stock and ours, healthy and while the Kubernetes
API hangs; it saves a screenshot of each and prints their paths.

Run it from the repository root as ``python -m scripts.demo`` (``bash scripts/demo.sh`` does): the api-server
sandbox lives in ``tests/support``, which no wheel ships.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from airflow_executor_logs.utils.processes import ManagerProcess
from airflow_executor_logs_testing import FakeKubeProcess, Fault, TaskRef, serve_task_pod
from tests.support import browser
from tests.support.sandbox import (
    DAG_ID,
    QUEUED_BY_JOB_ID,
    RUN_ID,
    TASK_ID,
    AirflowSandbox,
    ApiServer,
)

STOCK = "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"
FIX = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
POD_LINES = [f"demo pod log line {n:03d}" for n in range(100)]


def progress(message: str) -> None:
    print(f"  · {message}", flush=True)


@dataclass
class RunResult:
    label: str
    requests: int = 0
    errors: int = 0
    lines_served: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    first_on_worker: list[float] = field(default_factory=list)
    later_on_worker: list[float] = field(default_factory=list)
    workers_seen: int = 0
    managers: list[ManagerProcess] = field(default_factory=list)
    orphans: int = 0
    survivors: int = 0

    @property
    def leaked_rss(self) -> int:
        return sum(m.rss for m in self.managers)

    @property
    def leaked_uss(self) -> int:
        return sum(m.uss or 0 for m in self.managers)


def offers_gunicorn() -> bool:
    """Whether this core can run the API server under gunicorn, with worker refresh (3.2 and later)."""
    from airflow.configuration import conf

    return conf.has_option("api", "server_type")


def kill_workers(server: ApiServer) -> None:
    """SIGKILL every uvicorn worker (as an OOM kill or a crash would); uvicorn's supervisor starts new ones."""
    for pid in server.worker_pids():
        if pid != server.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def drive(server: ApiServer, result: RunResult, seconds: float, refresh: int) -> None:
    """Request the running task's log twice a second for ``seconds``, through worker recycling."""
    workers: set[int] = set(server.worker_pids())
    served_by: set[int | None] = set()
    started = time.monotonic()
    last_note = last_kill = 0.0
    served_since_kill = False
    while time.monotonic() - started < seconds:
        # uvicorn: recycle only once the current workers answered (a worker still starting is not killed again).
        if server.server_type == "uvicorn" and served_since_kill and time.monotonic() - started - last_kill >= refresh:
            last_kill = time.monotonic() - started
            served_since_kill = False
            kill_workers(server)
        try:
            response = server.fetch_task_log(ndjson=bool(result.requests % 2))
        except httpx.HTTPError as err:  # a timeout or a reset connection is an error of the run, not a crash
            result.requests += 1
            result.errors += 1
            progress(f"{result.label}: request failed: {type(err).__name__}: {err}")
            continue
        result.requests += 1
        served_since_kill = served_since_kill or response.status_code == 200
        result.seconds.append(response.elapsed)
        first = response.worker_pid not in served_by
        (result.first_on_worker if first else result.later_on_worker).append(response.elapsed)
        served_by.add(response.worker_pid)
        if response.status_code != 200:
            result.errors += 1
        result.lines_served.append(sum(line in response.text for line in POD_LINES))
        workers.update(server.worker_pids())
        elapsed = time.monotonic() - started
        if elapsed - last_note >= 10:
            last_note = elapsed
            progress(
                f"{result.label}: {elapsed:3.0f}s, {result.requests} requests, {len(workers)} workers so far, "
                f"{len(server.managers())} Manager processes alive"
            )
        time.sleep(0.5)
    result.workers_seen = len(workers)


def run(sandbox: AirflowSandbox, label: str, logging_config: str, seconds: float, refresh: int) -> RunResult:
    result = RunResult(label)
    env = {"AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": logging_config}
    if offers_gunicorn():
        server = sandbox.api_server(workers=2, server_type="gunicorn", worker_refresh_interval=refresh, extra_env=env)
        recycling = f"gunicorn, 2 workers, refresh every {refresh}s"
    else:
        server = sandbox.api_server(workers=2, server_type="uvicorn", extra_env=env)
        recycling = f"uvicorn, 2 workers, each SIGKILLed every {refresh}s"
    progress(f"{label}: starting airflow api-server ({recycling})")
    with server:
        progress(f"{label}: ready in {server.ready_after or 0:.1f}s; driving requests for {seconds:.0f}s")
        drive(server, result, seconds, refresh)
        result.managers = server.managers()
        tree = server.tree_pids()
        result.orphans = sum(1 for m in result.managers if m.orphaned or m.ppid not in tree)
        progress(f"{label}: graceful shutdown (SIGTERM to the server only)")
        server.terminate_root(timeout=60)
        time.sleep(1.0)
        result.survivors = len(server.managers())
    progress(f"{label}: stopped everything it left, by PID")
    return result


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.0f} ms" if values else "-"


def table(stock: RunResult, ours: RunResult) -> str:
    rows = [
        ("requests (errors)", f"{stock.requests} ({stock.errors})", f"{ours.requests} ({ours.errors})"),
        ("API workers seen (recycling)", str(stock.workers_seen), str(ours.workers_seen)),
        ("Manager processes leaked", str(len(stock.managers)), str(len(ours.managers))),
        ("  of them orphaned", str(stock.orphans), str(ours.orphans)),
        ("  alive after graceful stop", str(stock.survivors), str(ours.survivors)),
        ("RSS of leaked processes", mib(stock.leaked_rss), mib(ours.leaked_rss)),
        ("USS of leaked processes", mib(stock.leaked_uss), mib(ours.leaked_uss)),
        (
            "pod log lines per response",
            f"{min(stock.lines_served, default=0)}-{max(stock.lines_served, default=0)}",
            f"{min(ours.lines_served, default=0)}-{max(ours.lines_served, default=0)}",
        ),
        ("time per request (median)", ms(stock.seconds), ms(ours.seconds)),
        ("  first request on a worker", ms(stock.first_on_worker), ms(ours.first_on_worker)),
        ("  later requests", ms(stock.later_on_worker), ms(ours.later_on_worker)),
    ]
    width = max(len(r[0]) for r in rows)
    left = max(len(r[1]) for r in [*rows, ("", stock.label, "")])
    right = max(len(r[2]) for r in [*rows, ("", "", ours.label)])
    lines = [f"  {'':<{width}}  {stock.label:>{left}}  {ours.label:>{right}}", f"  {'-' * (width + left + right + 4)}"]
    lines += [f"  {name:<{width}}  {a:>{left}}  {b:>{right}}" for name, a, b in rows]
    return "\n".join(lines)


def verdict(stock: RunResult, ours: RunResult) -> str:
    if ours.errors or not ours.lines_served or min(ours.lines_served) < len(POD_LINES):
        return "FAIL: airflow-executor-logs did not serve every pod log line"
    if ours.managers or ours.survivors:
        return f"FAIL: {len(ours.managers)} Manager processes appeared with airflow-executor-logs"
    if stock.managers:
        return (
            f"FIXED: stock Airflow leaked {len(stock.managers)} Manager processes ({mib(stock.leaked_rss)} RSS); "
            "airflow-executor-logs leaked none and served the same logs."
        )
    return "OK: no leak with airflow-executor-logs (this provider does not fork a Manager on its own either)."


#: ``--ui``: the read deadline of ours, and how long the UI is watched during the hang (two polls past it).
UI_READ_TIMEOUT = 2.0
UI_HANG_SECONDS = 10.0


def screenshot_log_view(
    sandbox: AirflowSandbox, kube: FakeKubeProcess, label: str, logging_config: str, folder: Path
) -> list[Path]:
    """One api-server with ``logging_config``: the running task's Logs tab, healthy and during a hang."""
    env = {
        "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": logging_config,
        "AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT": str(UI_READ_TIMEOUT),
    }
    slug = "stock" if logging_config == STOCK else "ours"
    progress(f"{label}: starting airflow api-server (1 worker) and headless chromium")
    shots: list[Path] = []
    try:
        with sandbox.api_server(workers=1, extra_env=env) as server, browser.log_view(server.base_url) as view:
            view.open_task(DAG_ID, RUN_ID, TASK_ID)
            view.wait_for(lambda lines: any(POD_LINES[-1] in line.text for line in lines), 60, "the pod's last line")
            view.pause(1.0)
            shots.append(view.screenshot(folder / f"{slug}-healthy.png"))
            progress(f"{label}: the Kubernetes API hangs; watching the Logs tab for {UI_HANG_SECONDS:.0f}s")
            kube.inject("*", Fault.hang())
            view.pause(UI_HANG_SECONDS)
            shots.append(view.screenshot(folder / f"{slug}-kubernetes-hangs.png"))
            kube.heal()
    finally:
        kube.heal()
    return shots


def ui_main(folder: Path) -> int:
    """``--ui``: screenshots of the Logs tab, stock and ours; prints their paths."""
    reason = browser.unavailable()
    if reason is not None:
        print(f"cannot show the UI: {reason}", file=sys.stderr)
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="ael-demo-") as work:
        kubeconfig = Path(work) / "kubeconfig"
        progress("starting the loopback Kubernetes API")
        with FakeKubeProcess(kubeconfig) as kube:
            progress("creating an sqlite Airflow home with a RUNNING KubernetesExecutor task (db migrate)")
            with AirflowSandbox(kubeconfig=kubeconfig, base_dir=work) as sandbox:
                ti = TaskRef(DAG_ID, TASK_ID, RUN_ID, queued_by_job_id=QUEUED_BY_JOB_ID, id=sandbox.ti_ids[RUN_ID])
                for label, config in (("stock Airflow", STOCK), ("with airflow-executor-logs", FIX)):
                    serve_task_pod(kube, ti, 1, POD_LINES, name="running-task-pod")
                    shots += screenshot_log_view(sandbox, kube, label, config, folder)
    print()
    print("Screenshots of the running task's Logs tab:")
    for path in shots:
        print(f"  {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=50.0, help="how long to drive requests per run")
    parser.add_argument(
        "--refresh", type=int, default=15, help="seconds between worker recycles ([api] worker_refresh_interval)"
    )
    parser.add_argument(
        "--ui", action="store_true", help="screenshot the Logs tab in headless chromium, stock and ours, instead"
    )
    parser.add_argument(
        "--ui-dir", type=Path, default=None, help="where --ui saves its screenshots (default: a new temp folder)"
    )
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Airflow 3.0 logs every request at INFO once imported

    core = importlib.metadata.version("apache-airflow-core")
    provider = importlib.metadata.version("apache-airflow-providers-cncf-kubernetes")
    print(f"airflow-executor-logs demo: apache-airflow {core}, cncf-kubernetes {provider}", flush=True)
    if args.ui:
        return ui_main(args.ui_dir or Path(tempfile.mkdtemp(prefix="ael-demo-ui-")))
    with tempfile.TemporaryDirectory(prefix="ael-demo-") as work:
        kubeconfig = Path(work) / "kubeconfig"
        progress("starting the loopback Kubernetes API")
        with FakeKubeProcess(kubeconfig) as kube:
            progress("creating an sqlite Airflow home with a RUNNING KubernetesExecutor task (db migrate)")
            with AirflowSandbox(kubeconfig=kubeconfig, base_dir=work) as sandbox:
                progress("serving the running task's pod (labelled as the installed provider labels it)")
                ti = TaskRef(DAG_ID, TASK_ID, RUN_ID, queued_by_job_id=QUEUED_BY_JOB_ID, id=sandbox.ti_ids[RUN_ID])
                serve_task_pod(kube, ti, 1, POD_LINES, name="running-task-pod")
                stock = run(sandbox, "stock Airflow", STOCK, args.seconds, args.refresh)
                ours = run(sandbox, "with airflow-executor-logs", FIX, args.seconds, args.refresh)
    print()
    print(table(stock, ours))
    print()
    line = verdict(stock, ours)
    print(line)
    return 1 if line.startswith("FAIL") else 0


if __name__ == "__main__":
    sys.exit(main())
