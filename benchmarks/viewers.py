"""
Many people watching RUNNING tasks' logs: a real ``airflow api-server`` on a private PostgreSQL.

``python -m benchmarks.viewers`` (``bash benchmarks/viewers.sh`` picks the cell). Each scenario starts
a fresh api-server (uvicorn) on the same seeded database, stock or ours, and drives it with V viewers
polling the logs of T RUNNING tasks every 2 s, while two probes time ``GET /api/v2/version`` and
``GET /api/v2/dags``. The loopback Kubernetes API runs in its own process with a namespace of many pods,
and answers after a configurable latency, or never (hung).

The module also holds the load driver the e2e test ``tests/e2e/test_postgres_pressure.py`` uses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airflow_executor_logs_testing import FakeKubeProcess, Fault, TaskRef, task_pod
from tests.support.postgres import PostgresCluster
from tests.support.sandbox import (
    DAG_ID,
    QUEUED_BY_JOB_ID,
    RUN_ID,
    TASK_ID,
    UNREACHABLE_KUBECONFIG,
    AirflowSandbox,
    ApiServer,
    write_unreachable_kubeconfig,
)

FIX = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
STOCK = "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"
HANDLERS = {"stock": STOCK, "ours": FIX}
POD_LINES = [f"viewers pod line {n:03d}" for n in range(100)]
#: What a log answer must carry when Kubernetes did not answer: our messages, or the provider's.
CLEAR_MESSAGE_MARKERS = (
    "Executor logs unavailable",
    "Reading from k8s pod logs failed",
    "Kubernetes API failed",
    "timed out",
    "busy",
)
PROBE_PATHS = {"version": "/api/v2/version", "dags": "/api/v2/dags"}


@dataclass
class Sample:
    """One answered (or failed) request: ``status`` 0 is a client timeout or connection error."""

    kind: str
    started: float
    elapsed: float
    status: int
    clear_message: bool = False
    error: str = ""


@dataclass
class Load:
    """V viewers polling T tasks' logs every ``interval`` seconds for ``duration`` seconds."""

    viewers: int
    tasks: int
    interval: float = 2.0
    duration: float = 60.0
    client_timeout: float = 60.0
    probe_interval: float = 0.5
    probe_timeout: float = 30.0


@dataclass
class LoadResult:
    """Every sample of one run, and how many Kubernetes requests the server made meanwhile."""

    load: Load
    samples: list[Sample] = field(default_factory=list)
    kube_requests: int = 0
    wall: float = 0.0

    def of(self, kind: str) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind]

    def summary(self) -> dict[str, Any]:
        logs = self.of("log")
        answered = [s for s in logs if s.status]
        out: dict[str, Any] = {
            "viewers": self.load.viewers,
            "tasks": self.load.tasks,
            "log_requests": len(logs),
            "log_200": sum(s.status == 200 for s in logs),
            "log_5xx": sum(s.status >= 500 for s in logs),
            "log_client_timeouts": sum(s.status == 0 for s in logs),
            "log_p50": percentile([s.elapsed for s in answered], 50),
            "log_p99": percentile([s.elapsed for s in answered], 99),
            "log_max": max((s.elapsed for s in logs), default=math.nan),
            "log_clear_messages": sum(s.clear_message for s in logs),
            "kube_requests": self.kube_requests,
            "kube_per_s": self.kube_requests / self.wall if self.wall else math.nan,
            "wall": self.wall,
        }
        for kind in PROBE_PATHS:
            probes = self.of(kind)
            times = [s.elapsed if s.status else self.load.probe_timeout for s in probes]
            out[f"{kind}_n"] = len(probes)
            out[f"{kind}_p95"] = percentile(times, 95)
            out[f"{kind}_p99"] = percentile(times, 99)
            out[f"{kind}_max"] = max(times, default=math.nan)
            out[f"{kind}_timeouts"] = sum(s.status == 0 for s in probes)
            out[f"{kind}_non_200"] = sum(s.status != 200 for s in probes)
        return out


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank), ``nan`` for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _get(client: httpx.Client, kind: str, path: str, headers: Mapping[str, str]) -> Sample:
    started = time.monotonic()
    try:
        response = client.get(path, headers=dict(headers))
    except httpx.HTTPError as err:
        return Sample(kind, started, time.monotonic() - started, 0, error=f"{type(err).__name__}: {err}")
    elapsed = time.monotonic() - started
    text = response.text if kind == "log" else ""
    clear = any(marker in text for marker in CLEAR_MESSAGE_MARKERS)
    error = "" if response.status_code == 200 else response.text[:300]
    return Sample(kind, started, elapsed, response.status_code, clear_message=clear, error=error)


def _poll(
    base_url: str, kind: str, path: str, headers: Mapping[str, str], *, interval: float, timeout: float,
    first: float, until: float, out: list[Sample], lock: threading.Lock,
) -> None:  # fmt: skip
    """Request ``path`` every ``interval`` s (the next one right after a slower answer), from ``first``."""
    with httpx.Client(base_url=base_url, timeout=timeout, trust_env=False) as client:
        due = first
        while True:
            time.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() >= until:
                return
            sample = _get(client, kind, path, headers)
            with lock:
                out.append(sample)
            due = max(due + interval, time.monotonic())


def drive(server: ApiServer, load: Load, kube: FakeKubeProcess) -> LoadResult:
    """Run ``load`` against ``server``; viewers start spread over the first interval."""
    headers = server.request_headers()
    log_paths = [server.task_log_path(run_id=run_id) for run_id in run_ids(load.tasks)]
    samples: list[Sample] = []
    lock = threading.Lock()
    kube_before = kube.stats()["requests"]
    started = time.monotonic()
    until = started + load.duration
    threads = [
        threading.Thread(
            target=_poll,
            args=(server.base_url, "log", log_paths[n % load.tasks], headers),
            kwargs={
                "interval": load.interval, "timeout": load.client_timeout, "out": samples, "lock": lock,
                "first": started + load.interval * n / load.viewers, "until": until,
            },
            daemon=True,
        )
        for n in range(load.viewers)
    ]  # fmt: skip
    threads += [
        threading.Thread(
            target=_poll,
            args=(server.base_url, kind, path, headers),
            kwargs={
                "interval": load.probe_interval, "timeout": load.probe_timeout, "out": samples, "lock": lock,
                "first": started, "until": until,
            },
            daemon=True,
        )
        for kind, path in PROBE_PATHS.items()
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=load.duration + max(load.client_timeout, load.probe_timeout) + 10)
    wall = time.monotonic() - started
    return LoadResult(load, samples, kube.stats()["requests"] - kube_before, wall)


def warm_up(server: ApiServer, tasks: int, rounds: int = 4, parallel: int = 4) -> None:
    """Read every task's log ``rounds`` times, ``parallel`` at once, so every worker has imported and cached."""
    headers = server.request_headers()
    paths = [server.task_log_path(run_id=run_id) for run_id in run_ids(tasks)] + list(PROBE_PATHS.values())

    def read_all() -> None:
        with httpx.Client(base_url=server.base_url, timeout=120.0, trust_env=False) as client:
            for _ in range(rounds):
                for path in paths:
                    client.get(path, headers=headers)

    threads = [threading.Thread(target=read_all, daemon=True) for _ in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)


# ---------------------------------------------------------------------------------- the deployment


def run_ids(tasks: int) -> list[str]:
    """The run id of each RUNNING task: the sandbox's main run, then ``viewers__<n>``."""
    return [RUN_ID, *(f"viewers__{n}" for n in range(1, tasks))]


def serve_task_pods(kube: FakeKubeProcess, sandbox: AirflowSandbox, tasks: int) -> None:
    """Serve each RUNNING task's worker pod, labelled as the installed provider labels it."""
    for run_id in run_ids(tasks):
        ref = TaskRef(DAG_ID, TASK_ID, run_id, queued_by_job_id=QUEUED_BY_JOB_ID, id=sandbox.ti_ids[run_id])
        kube.add_pod(**task_pod(ref, 1, POD_LINES, name=f"task-pod-{run_id.replace('_', '-')}"[:63]))


def filler_pods(count: int) -> list[dict[str, Any]]:
    """Other tasks' pods in the namespace: the label selector has to skip them."""
    return [
        {
            "name": f"other-pod-{n}",
            "namespace": "default",
            "labels": {"dag_id": "other", "run_id": f"r{n}"},
            "logs": {"base": []},
        }
        for n in range(count)
    ]


@dataclass
class Deployment:
    postgres: PostgresCluster
    kube: FakeKubeProcess
    sandbox: AirflowSandbox


@contextlib.contextmanager
def deployment(
    tasks: int, *, namespace_pods: int = 0, executor_logs: Mapping[str, str] | None = None
) -> Iterator[Deployment]:
    """PostgreSQL, the loopback Kubernetes API with the tasks' pods (and fillers), a seeded sandbox."""
    ids = run_ids(tasks)
    with PostgresCluster() as postgres:
        kubeconfig = Path(postgres.root or ".") / "kubeconfig"
        env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url}
        env.update({f"AIRFLOW__EXECUTOR_LOGS__{k.upper()}": v for k, v in (executor_logs or {}).items()})
        with (
            FakeKubeProcess(kubeconfig, pods=filler_pods(namespace_pods)) as kube,
            AirflowSandbox(
                kubeconfig=kubeconfig,
                logging_config_class=FIX,
                extra_env=env,
                extra_runs=[(run_id, "KubernetesExecutor") for run_id in ids[1:]],
            ) as sandbox,
        ):
            serve_task_pods(kube, sandbox, tasks)
            yield Deployment(postgres, kube, sandbox)


def api_server(dep: Deployment, handler: str, *, workers: int = 2, env: Mapping[str, str] | None = None) -> ApiServer:
    """An api-server (uvicorn) with the stock or our logging config; not yet started."""
    extra = {"AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": HANDLERS[handler], **(env or {})}
    return dep.sandbox.api_server(workers=workers, server_type="uvicorn", extra_env=extra, request_timeout=60.0)


def uptime() -> str:
    """The machine's load averages (it is shared and noisy), as ``uptime`` prints them."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def refusing_env(dep: Deployment) -> dict[str, str]:
    """Server environment whose kubeconfig points at a closed local port: every call is refused at once."""
    path = str(write_unreachable_kubeconfig(dep.sandbox.root / f"{UNREACHABLE_KUBECONFIG}.yaml"))
    return {"KUBECONFIG": path, "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": path}


# ---------------------------------------------------------------------------------- scenarios

STEADY_LOADS = ((1, 1), (10, 1), (30, 1), (10, 3))


@dataclass(frozen=True)
class Pressure:
    """One fresh api-server per run: Kubernetes hung (or refusing), ``viewers`` on one task."""

    key: str
    title: str
    viewers: int
    workers: int
    kube: str  # "hang" or "refuse"
    handlers: tuple[str, ...] = ("stock", "ours")


PRESSURES = (
    Pressure("target32", "hung API, 1 worker, default pool, 32 viewers (the target)", 32, 1, "hang"),
    Pressure("hung64x2", "hung API, 2 workers, 64 viewers", 64, 2, "hang"),
    Pressure("hung64x1", "hung API, 1 worker, 64 viewers", 64, 1, "hang", ("ours",)),
    Pressure("refuse64x1", "refusing API (control), 1 worker, 64 viewers", 64, 1, "refuse", ("ours",)),
)


def run_steady(dep: Deployment, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """V viewers x T tasks with Kubernetes answering after ``--latency``; one server per handler."""
    dep.kube.clear_faults()
    if args.latency > 0:
        dep.kube.inject("*", Fault.delay(args.latency))
    for handler in ("stock", "ours"):
        with api_server(dep, handler, workers=2) as server:
            warm_up(server, tasks=max(t for _, t in STEADY_LOADS))
            for viewers, tasks in STEADY_LOADS:
                load = Load(viewers=viewers, tasks=tasks, duration=args.duration)
                summary = drive(server, load, dep.kube).summary()
                summary["uptime"] = uptime()
                results["steady"][f"{viewers}x{tasks}"][handler] = summary
                _progress(f"steady {viewers}x{tasks} {handler}", summary)
                time.sleep(2)
    dep.kube.clear_faults()


def run_pressure(dep: Deployment, pressure: Pressure, args: argparse.Namespace, results: dict[str, Any]) -> None:
    for handler in pressure.handlers:
        env = refusing_env(dep) if pressure.kube == "refuse" else {}
        with api_server(dep, handler, workers=pressure.workers, env=env) as server:
            warm_up(server, tasks=1, rounds=2)
            if pressure.kube == "hang":
                dep.kube.inject("*", Fault.hang())
            spy = None
            if args.py_spy is not None and pressure.workers == 1:
                out = args.py_spy_dir / f"{pressure.key}-{handler}.txt"
                spy = threading.Timer(args.duration / 2, py_spy_dump, (args.py_spy, server.worker_pids(), out))
                spy.start()
            try:
                load = Load(viewers=pressure.viewers, tasks=1, duration=args.duration, client_timeout=60.0)
                summary = drive(server, load, dep.kube).summary()
            finally:
                dep.kube.clear_faults()
                if spy is not None:
                    spy.cancel()
        summary["uptime"] = uptime()
        results["pressure"][pressure.key][handler] = summary
        _progress(f"{pressure.key} {handler}", summary)


def py_spy_dump(py_spy: Path, pids: Sequence[int], out: Path) -> None:
    """Write ``py-spy dump`` of each worker (every thread's stack) to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as file:
        for pid in pids:
            file.write(f"### py-spy dump --pid {pid} at {time.strftime('%H:%M:%S')}\n")
            file.flush()
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                cmd = [str(py_spy), "dump", "--pid", str(pid), "--nonblocking"]
                subprocess.run(cmd, stdout=file, stderr=subprocess.STDOUT, timeout=60, check=False)


def _progress(label: str, summary: Mapping[str, Any]) -> None:
    print(
        f"  {label}: logs {summary['log_200']}/{summary['log_requests']} ok, 5xx {summary['log_5xx']}, "
        f"p50 {summary['log_p50']:.2f}s p99 {summary['log_p99']:.2f}s, kube {summary['kube_per_s']:.1f}/s, "
        f"version p95 {summary['version_p95']:.3f}s ({summary['version_timeouts']} timeouts) | {summary['uptime']}",
        flush=True,
    )


# ---------------------------------------------------------------------------------- report


def _fmt(value: Any, unit: str = "") -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}{unit}" if unit == "s" else f"{value:.1f}{unit}"
    return str(value)


def _ratio(ours: float, stock: float) -> str:
    if not stock or math.isnan(stock) or math.isnan(ours):
        return "n/a"
    return f"{ours / stock:.2f}"


def report(results: Mapping[str, Any]) -> str:
    """Markdown tables: steady loads side by side with ratios, then the pressure runs."""
    out = [f"cell {results['cell']}, duration {results['duration']:.0f} s, latency {results['latency']} s per call", ""]
    out += [
        "| V x T | handler | log answers | kube req/s | kube req per answer | log p50 | log p99 "
        "| version p99 | dags p99 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, by_handler in results["steady"].items():
        for handler in ("stock", "ours"):
            row = by_handler.get(handler)
            if row is None:
                continue
            per = row["kube_requests"] / row["log_200"] if row["log_200"] else math.nan
            out.append(
                f"| {key} | {handler} | {row['log_200']}/{row['log_requests']} | {_fmt(row['kube_per_s'])} | "
                f"{_fmt(per)} | {_fmt(row['log_p50'], 's')} | {_fmt(row['log_p99'], 's')} | "
                f"{_fmt(row['version_p99'], 's')} | {_fmt(row['dags_p99'], 's')} |"
            )
        if {"stock", "ours"} <= by_handler.keys():
            stock, ours = by_handler["stock"], by_handler["ours"]
            out.append(
                f"| {key} | ours/stock | | {_ratio(ours['kube_per_s'], stock['kube_per_s'])} | | "
                f"{_ratio(ours['log_p50'], stock['log_p50'])} | {_ratio(ours['log_p99'], stock['log_p99'])} | "
                f"{_ratio(ours['version_p99'], stock['version_p99'])} | {_ratio(ours['dags_p99'], stock['dags_p99'])} |"
            )
    out += ["", "| scenario | handler | log 200 / requests | log 5xx | no answer | log max | clear messages "
            "| version p95 | version timeouts | dags p95 |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for pressure in PRESSURES:
        for handler, row in results["pressure"].get(pressure.key, {}).items():
            out.append(
                f"| {pressure.title} | {handler} | {row['log_200']}/{row['log_requests']} | {row['log_5xx']} | "
                f"{row['log_client_timeouts']} | {_fmt(row['log_max'], 's')} | {row['log_clear_messages']} | "
                f"{_fmt(row['version_p95'], 's')} | {row['version_timeouts']} | {_fmt(row['dags_p95'], 's')} |"
            )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", default=os.environ.get("VIEWERS_CELL", "unknown"))
    parser.add_argument("--duration", type=float, default=60.0, help="seconds each load runs (default 60)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the Kubernetes API takes per call")
    parser.add_argument("--namespace-pods", type=int, default=2000, help="other pods in the namespace")
    parser.add_argument("--only", choices=("steady", "pressure"), help="run one group of scenarios")
    parser.add_argument(
        "--pressure", nargs="+", choices=[p.key for p in PRESSURES], help="run only these pressure scenarios"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--py-spy", type=Path, help="py-spy binary: dump the 1-worker runs' stacks mid-load")
    parser.add_argument("--py-spy-dir", type=Path, default=Path("benchmarks/results/py-spy"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "cell": args.cell, "duration": args.duration, "latency": args.latency, "uptime_start": uptime(),
        "steady": {f"{v}x{t}": {} for v, t in STEADY_LOADS}, "pressure": {p.key: {} for p in PRESSURES},
    }  # fmt: skip
    print(f"viewers benchmark on {args.cell}: {results['uptime_start']}", flush=True)
    with deployment(max(t for _, t in STEADY_LOADS), namespace_pods=args.namespace_pods) as dep:
        if args.only in (None, "steady"):
            run_steady(dep, args, results)
        if args.only in (None, "pressure"):
            for pressure in PRESSURES:
                if args.pressure is None or pressure.key in args.pressure:
                    run_pressure(dep, pressure, args, results)
    results["uptime_end"] = uptime()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(report(results))
    print(f"\nuptime at the end: {results['uptime_end']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
