"""
Short-lived executor (fallback) reads: under every start method, and a real executor under viewers (issue 20).

``python -m benchmarks.fallback start-methods --cell CELL --out FILE``: fallback reads through our handler,
timed with ``fork``, ``spawn`` and ``forkserver`` set globally in this process
(``multiprocessing.set_start_method(..., force=True)``; the helper passes it on to each read's child),
interleaved in blocks. Two executors: the kit's ``ManagerExecutor`` (a Manager started in ``__init__``)
and ``benchmarks.fallback_executor.PodLogExecutor`` (two Kubernetes calls on the loopback API). Answer
reuse is off (``answer_ttl`` = 1 µs): every timed read builds an executor.

``python -m benchmarks.fallback nomad --cell CELL --out FILE`` (the cell with apache-airflow-providers-nomad
0.0.7): a real ``airflow api-server`` (one uvicorn worker, sqlite) with a RUNNING NomadExecutor task, stock and
ours: sequential reads, then 10 viewers polling it every 3 s; NomadExecutor constructions are counted by a
``sitecustomize`` hook that journals each one with its pid and parents; processes by PID (``psutil``).

``python -m benchmarks.fallback report FILE...`` prints the tables again from the JSON files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

START_METHODS = ("fork", "spawn", "forkserver")
MANAGER_EXECUTOR = "airflow_executor_logs_testing.executors.ManagerExecutor"
POD_LOG_EXECUTOR = "benchmarks.fallback_executor.PodLogExecutor"
NOMAD_EXECUTOR = "airflow.providers.nomad.executors.nomad_executor.NomadExecutor"
NOMAD_MODULE = "airflow.providers.nomad.executors.nomad_executor"
#: What NomadExecutor.get_task_log says when no Nomad answers (its own messages).
NOMAD_MESSAGES = ("through Nomad API", "Unexpected result from Nomad API allocations query")
NOMAD_RUN_ID = "nomad__running"
#: Environment variable naming the file the sitecustomize hook journals NomadExecutor constructions to.
BUILDS_ENV = "AEL_BENCH_NOMAD_BUILDS"
FIX = "airflow_executor_logs.logging_config.LOGGING_CONFIG"
STOCK = "airflow.config_templates.airflow_local_settings.DEFAULT_LOGGING_CONFIG"

#: ``answer_ttl`` for "no reuse": 0 means the default (1 s), so one microsecond.
NO_REUSE = "0.000001"

TARGETS = {
    "forkserver_fork_max": 1.5,
    "sequential_ours_stock_max": 2.0,
    "viewers_median_ours_stock_max": 2.0,
    "builds_per_answer_ttl_max": 1.0,
}


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"   {message}", file=sys.stderr, flush=True)


def median_ms(samples: Sequence[float]) -> float:
    """Median of ``samples`` (seconds) in milliseconds; nan for none."""
    return statistics.median(samples) * 1000 if samples else math.nan


def pct_ms(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of ``samples`` (seconds) in milliseconds."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)] * 1000


def versions(*distributions: str) -> dict[str, str]:
    """The installed version of each distribution (``-`` when absent), and Python's."""
    out = {"python": platform.python_version()}
    for name in distributions:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


# --------------------------------------------------------------------------------------------
# 1. start methods
# --------------------------------------------------------------------------------------------


def _helper_pids() -> set[int]:
    """The pid of the helper of this process's pipeline (the one our handler reads through), if it runs."""
    from airflow_executor_logs import process_pipeline

    pid = process_pipeline().helper.pid
    return set() if pid is None else {pid}


def _descendants() -> set[int]:
    with contextlib.suppress(psutil.Error):
        return {child.pid for child in psutil.Process().children(recursive=True)}
    return set()


def start_methods(args: argparse.Namespace) -> dict[str, Any]:
    """Fallback reads of each executor under each start method, interleaved in blocks; medians and ratios."""
    from airflow_executor_logs_testing import FakeKubeProcess
    from benchmarks import bench

    with tempfile.TemporaryDirectory(prefix="executor-logs-fallback-") as tmp:
        home, kubeconfig = Path(tmp) / "airflow", Path(tmp) / "kubeconfig"
        (home / "logs").mkdir(parents=True)
        os.environ.update(bench.airflow_environment(home, kubeconfig))
        os.environ["AIRFLOW__CORE__EXECUTOR"] = f"KubernetesExecutor,{POD_LOG_EXECUTOR},{MANAGER_EXECUTOR}"
        os.environ["AIRFLOW__EXECUTOR_LOGS__ANSWER_TTL"] = NO_REUSE  # every read builds
        with FakeKubeProcess(kubeconfig) as fake:
            for spec in bench.pod_specs():
                fake.add_pod(**spec)
            read = bench.ours_reader(home / "logs")
            tis = {
                "ManagerExecutor": bench.task_instance("100", MANAGER_EXECUTOR),
                "PodLogExecutor": bench.task_instance("100", POD_LOG_EXECUTOR),
            }
            samples: dict[str, dict[str, list[float]]] = {e: {m: [] for m in START_METHODS} for e in tis}
            left: dict[str, set[int]] = {m: set() for m in START_METHODS}
            load_before = os.getloadavg()
            started = time.monotonic()
            for method in START_METHODS:  # warm-up: the helper starts and preloads; first reads of each
                multiprocessing.set_start_method(method, force=True)
                for executor, ti in tis.items():
                    for _ in range(args.warmup):
                        check_fallback(executor, read(ti))
            rounds = math.ceil(args.reads / args.block)
            for index in range(rounds):
                order = START_METHODS[index % 3 :] + START_METHODS[: index % 3]
                for method in order:
                    multiprocessing.set_start_method(method, force=True)
                    for executor, ti in tis.items():
                        for _ in range(args.block):
                            before = _descendants()
                            t0 = time.perf_counter()
                            result = read(ti)
                            samples[executor][method].append(time.perf_counter() - t0)
                            check_fallback(executor, result)
                            left[method] |= _descendants() - before - _helper_pids()
            elapsed = time.monotonic() - started
            still = {m: sorted(pid for pid in pids if psutil.pid_exists(pid)) for m, pids in left.items()}
    from airflow_executor_logs import process_pipeline

    process_pipeline().helper.stop()
    per_executor = {}
    for executor, by_method in samples.items():
        stats = {
            m: {"n": len(s), "median_ms": median_ms(s), "p95_ms": pct_ms(s, 95), "min_ms": min(s) * 1000}
            for m, s in by_method.items()
        }
        fork = stats["fork"]["median_ms"]
        per_executor[executor] = {
            "methods": stats,
            "ratio_to_fork": {m: stats[m]["median_ms"] / fork for m in START_METHODS},
        }
    return {
        "kind": "start-methods",
        "cell": args.cell,
        "versions": versions("apache-airflow-core", "apache-airflow-providers-cncf-kubernetes"),
        "settings": {"reads": rounds * args.block, "warmup": args.warmup, "block": args.block},
        "load": {"before": load_before, "after": os.getloadavg()},
        "elapsed_s": elapsed,
        "executors": per_executor,
        "left_running": still,
        "targets": TARGETS,
    }


def check_fallback(executor: str, result: Any) -> None:
    """Fail the run when a fallback read did not return the executor's own log."""
    messages, chunks = result
    text = "\n".join(str(c) for c in chunks)
    if executor == "ManagerExecutor":
        if "read by ManagerExecutor" not in messages or "line for read_100 try 1" not in text:
            raise RuntimeError(f"ManagerExecutor read failed: {messages} {text[:300]}")
    elif text.count("bench-line ") != 100:
        raise RuntimeError(f"PodLogExecutor read failed: {messages} {text[:300]}")


# --------------------------------------------------------------------------------------------
# 2. Nomad on a real api-server
# --------------------------------------------------------------------------------------------

SITECUSTOMIZE = '''\
"""Benchmark hook: journal every NomadExecutor construction (pid, parent, grandparent, time)."""
import os
import sys

_FILE = os.environ.get("{env}")
_MODULE = "{module}"


def _ppid_of(pid):
    try:
        with open(f"/proc/{{pid}}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _patch(module):
    cls = module.NomadExecutor
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        import time
        ppid = os.getppid()
        line = f"{{time.time():.6f}} {{os.getpid()}} {{ppid}} {{_ppid_of(ppid)}}\\n".encode()
        fd = os.open(_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        original(self, *args, **kwargs)

    cls.__init__ = __init__


class _Finder:
    def find_spec(self, name, path, target=None):
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if _FILE:
    sys.meta_path.insert(0, _Finder())
'''


@dataclass
class Build:
    """One NomadExecutor construction: when, in which process, and its parent and grandparent."""

    at: float
    pid: int
    ppid: int
    gppid: int


def read_builds(path: Path) -> list[Build]:
    """Every construction journaled so far."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        at, pid, ppid, gppid = line.split()
        out.append(Build(float(at), int(pid), int(ppid), int(gppid)))
    return out


def worker_of(build: Build, workers: Sequence[int]) -> int | None:
    """The API worker a construction ran for: itself (stock), or its helper's parent (ours)."""
    for pid in (build.pid, build.ppid, build.gppid):
        if pid in workers:
            return pid
    return None


@dataclass
class Tree:
    """Every process seen in the api-server's tree while sampling, by (pid, create time)."""

    seen: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self, root: int) -> None:
        from tests.support.process_control import process_tree

        for proc in process_tree(root):
            with contextlib.suppress(psutil.Error):
                self.seen.setdefault(proc.pid, proc.create_time())

    @contextlib.contextmanager
    def sampling(self, root: int, every: float = 0.1) -> Iterator[None]:
        def loop() -> None:
            while not self.stop.wait(every):
                with contextlib.suppress(Exception):
                    self.sample(root)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self.stop.set()
            thread.join(5)

    def alive(self) -> list[psutil.Process]:
        from tests.support.process_control import same_process

        procs = (same_process(pid, created) for pid, created in self.seen.items())
        return [p for p in procs if p is not None]


def describe(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return f"{proc.pid} {' '.join(proc.cmdline())[:120]}"
    return str(proc.pid)


def poll_viewers(
    base_url: str, path: str, headers: dict[str, str], *, viewers: int, interval: float, duration: float
) -> list[tuple[float, float, int, bool]]:
    """``viewers`` threads, each polling ``path`` every ``interval`` s (starts spread over one interval)."""
    import httpx

    out: list[tuple[float, float, int, bool]] = []
    lock = threading.Lock()
    started = time.monotonic()
    until = started + duration

    def viewer(n: int) -> None:
        due = started + interval * n / viewers
        with httpx.Client(base_url=base_url, timeout=60.0, trust_env=False) as client:
            while True:
                time.sleep(max(0.0, due - time.monotonic()))
                if time.monotonic() >= until:
                    return
                t0 = time.monotonic()
                try:
                    response = client.get(path, headers=headers)
                    status, ok = response.status_code, all(m in response.text for m in NOMAD_MESSAGES)
                except httpx.HTTPError:
                    status, ok = 0, False
                with lock:
                    out.append((t0, time.monotonic() - t0, status, ok))
                due = max(due + interval, time.monotonic())

    threads = [threading.Thread(target=viewer, args=(n,), daemon=True) for n in range(viewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 90)
    return out


def sequential(server: Any, path: str, headers: dict[str, str], reads: int) -> list[float]:
    """``reads`` reads one after another on one connection; seconds each; every one must carry Nomad's messages."""
    import httpx

    times = []
    with httpx.Client(base_url=server.base_url, timeout=60.0, trust_env=False) as client:
        for _ in range(reads):
            t0 = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append(time.perf_counter() - t0)
            if response.status_code != 200 or not all(m in response.text for m in NOMAD_MESSAGES):
                raise RuntimeError(f"bad answer {response.status_code}: {response.text[:500]}")
    return times


@dataclass(frozen=True)
class Variant:
    key: str
    handler: str
    answer_ttl: float | None = None
    viewers: bool = True


VARIANTS = (
    Variant("stock", STOCK),
    Variant("ours", FIX),
    Variant("ours, no answer reuse (reference)", FIX, answer_ttl=float(NO_REUSE), viewers=False),
    Variant("ours, answer_ttl=5", FIX, answer_ttl=5.0),
)


def nomad(args: argparse.Namespace) -> dict[str, Any]:
    """Stock, ours (and ours without answer reuse) on a fresh one-worker api-server each."""
    from tests.support.sandbox import AirflowSandbox, free_port

    results: dict[str, Any] = {
        "kind": "nomad",
        "cell": args.cell,
        "versions": versions("apache-airflow-core", "apache-airflow-providers-nomad"),
        "settings": {
            "sequential_reads": args.reads,
            "viewers": args.viewers,
            "interval_s": args.interval,
            "duration_s": args.duration,
            "answer_ttl_s": 1.0,
            "workers": 1,
        },
        "variants": {},
        "targets": TARGETS,
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="executor-logs-nomad-") as tmp:
        hook = Path(tmp) / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(SITECUSTOMIZE.format(env=BUILDS_ENV, module=NOMAD_MODULE))
        nomad_port = free_port()  # nothing listens: Nomad's client is refused at once
        env = {
            "AIRFLOW__CORE__EXECUTOR": f"KubernetesExecutor,{NOMAD_EXECUTOR}",
            "NOMAD_ADDR": f"http://127.0.0.1:{nomad_port}",
            "AIRFLOW__NOMAD_PROVIDER__AGENT_HOST": "127.0.0.1",
            "AIRFLOW__NOMAD_PROVIDER__AGENT_SERVER_PORT": str(nomad_port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        }
        with AirflowSandbox(extra_env=env, extra_runs=[(NOMAD_RUN_ID, NOMAD_EXECUTOR)]) as sandbox:
            say(f"sandbox seeded at {sandbox.root}")
            for variant in VARIANTS:
                if variant.key not in args.variants:
                    continue
                results["variants"][variant.key] = run_variant(sandbox, variant, Path(tmp), args)
    results["elapsed_s"] = time.monotonic() - started
    return results


def run_variant(sandbox: Any, variant: Variant, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh server: warm-up, sequential reads, viewers; builds per worker; what is left running."""
    from airflow_executor_logs.utils.zygote import is_helper_cmdline

    builds_file = tmp / f"builds-{len(list(tmp.glob('builds-*')))}.txt"
    extra = {"AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS": variant.handler, BUILDS_ENV: str(builds_file)}
    if variant.answer_ttl is not None:
        extra["AIRFLOW__EXECUTOR_LOGS__ANSWER_TTL"] = repr(variant.answer_ttl)
    out: dict[str, Any] = {"load_start": os.getloadavg()}
    server = sandbox.api_server(workers=1, server_type="uvicorn", extra_env=extra, request_timeout=60.0)
    tree = Tree()
    try:
        server.start()
        headers = server.request_headers()
        path = server.task_log_path(run_id=NOMAD_RUN_ID)
        workers = server.worker_pids()
        out["workers"] = workers
        with tree.sampling(server.pid):
            sequential(server, path, headers, args.warmup)
            seq = sequential(server, path, headers, args.reads)
            t_seq = time.time()
            seq_builds = [b for b in read_builds(builds_file) if b.at <= t_seq]
            out["sequential"] = {
                "n": len(seq),
                "median_ms": median_ms(seq),
                "p90_ms": pct_ms(seq, 90),
                "max_ms": max(seq) * 1000,
                "mean_ms": statistics.fmean(seq) * 1000,
                "builds_incl_warmup": len(seq_builds),
            }
            say(f"{variant.key}: sequential median {out['sequential']['median_ms']:.1f} ms")
            if variant.viewers:
                time.sleep(1.5)  # the last sequential answer is no longer reused
                t0 = time.time()
                polls = poll_viewers(
                    server.base_url, path, headers,
                    viewers=args.viewers, interval=args.interval, duration=args.duration,
                )  # fmt: skip
                t1 = time.time()
                window = [b for b in read_builds(builds_file) if t0 <= b.at <= t1]
                per_worker: dict[str, int] = {}
                for build in window:
                    owner = worker_of(build, workers)
                    per_worker[str(owner)] = per_worker.get(str(owner), 0) + 1
                times = [elapsed for _, elapsed, status, _ in polls if status == 200]
                seconds = t1 - t0
                ttl = variant.answer_ttl or 1.0
                worst = max(per_worker.values(), default=0)
                out["viewers"] = {
                    "polls": len(polls),
                    "ok_200": sum(status == 200 for _, _, status, _ in polls),
                    "with_nomad_messages": sum(ok for *_, ok in polls),
                    "median_ms": median_ms(times),
                    "p95_ms": pct_ms(times, 95),
                    "max_ms": max(times, default=math.nan) * 1000,
                    "seconds": seconds,
                    "builds": len(window),
                    "builds_per_worker": per_worker,
                    "answer_ttl_s": ttl,
                    "builds_per_answer_ttl_per_worker": worst / (seconds / ttl),
                }
                say(
                    f"{variant.key}: {len(polls)} polls, median {out['viewers']['median_ms']:.1f} ms, "
                    f"{len(window)} builds in {seconds:.0f} s"
                )
            time.sleep(3.0)  # a read's child and its processes have had time to go
            tree.sample(server.pid)
        root = psutil.Process(server.pid)
        live = [p for p in tree.alive() if p.pid != root.pid and p.pid not in workers]
        helpers = [p for p in live if _cmdline_is(p, is_helper_cmdline)]
        others = [p for p in live if p not in helpers]
        out["processes_seen"] = len(tree.seen)
        out["helpers_running"] = len(helpers)
        out["left_running_after_load"] = [describe(p) for p in others]
        # Graceful shutdown: what outlives the server, of every process seen in its tree and its TMPDIR.
        server.terminate_root(timeout=30.0)
        time.sleep(3.0)
        from tests.support.process_control import find_processes_with_env

        after = {p.pid: p for p in tree.alive()}
        after.update({p.pid: p for p in find_processes_with_env("TMPDIR", server.tmpdir)})
        out["left_running_after_shutdown"] = [describe(p) for p in after.values()]
    finally:
        server.stop()
    out["load_end"] = os.getloadavg()
    return out


def _cmdline_is(proc: psutil.Process, test: Callable[[list[str]], bool]) -> bool:
    with contextlib.suppress(psutil.Error):
        return test(proc.cmdline())
    return False


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _status(ok: bool) -> str:
    return "pass" if ok else "MISS"


def render(results: Sequence[dict[str, Any]]) -> str:
    """Markdown tables: start methods side by side per cell, then Nomad stock vs ours."""
    out: list[str] = []
    methods = [r for r in results if r["kind"] == "start-methods"]
    if methods:
        header = "| fallback read, median ms (p95) | " + " | ".join(
            f"{r['cell']} (Python {r['versions']['python']})" for r in methods
        )
        out += [header + " |", "|---" * (len(methods) + 1) + "|"]
        executors = list(methods[0]["executors"])
        for executor in executors:
            for method in START_METHODS:
                cells = []
                for r in methods:
                    s = r["executors"][executor]["methods"][method]
                    cells.append(f"{s['median_ms']:.1f} ({s['p95_ms']:.1f})")
                out.append(f"| {executor}, {method} | " + " | ".join(cells) + " |")
            for method in ("spawn", "forkserver"):
                cells = []
                for r in methods:
                    ratio = r["executors"][executor]["ratio_to_fork"][method]
                    mark = f": {_status(ratio <= TARGETS['forkserver_fork_max'])}" if method == "forkserver" else ""
                    cells.append(f"**{ratio:.2f}x**{mark}" if method == "forkserver" else f"{ratio:.2f}x")
                label = f"{executor}, {method} / fork" + (" (target <= 1.5)" if method == "forkserver" else "")
                out.append(f"| {label} | " + " | ".join(cells) + " |")
        cells = [", ".join(f"{m} {len(p)}" for m, p in r["left_running"].items()) for r in methods]
        out.append("| processes left running after the reads | " + " | ".join(cells) + " |")
        cells = [
            f"{r['settings']['reads']} x 3 x 2, {r['elapsed_s']:.0f} s, load {r['load']['before'][0]:.1f}"
            for r in methods
        ]
        out.append("| timed reads per method and executor; run time | " + " | ".join(cells) + " |")
    for r in results:
        if r["kind"] == "nomad":
            out += render_nomad(r)
    return "\n".join(out)


def render_nomad(r: dict[str, Any]) -> list[str]:
    """The Nomad table: stock and ours (and the reference without reuse), with ratios and targets."""
    out: list[str] = []
    v = r["variants"]
    out += ["", f"Nomad on {r['cell']} (Python {r['versions']['python']}, "
            f"providers-nomad {r['versions']['apache-airflow-providers-nomad']}), one uvicorn worker:", ""]  # fmt: skip
    names = list(v)
    out += ["| metric | " + " | ".join(names) + " | ours / stock |", "|---" * (len(names) + 2) + "|"]

    def row(label: str, get: Callable[[dict[str, Any]], Any], fmt: str, ratio: bool = False) -> None:
        values = [get(v[n]) if get(v[n]) is not None else None for n in names]
        cells = ["-" if x is None else format(x, fmt) for x in values]
        extra = ""
        if ratio and "stock" in v and "ours" in v:
            extra = f"{get(v['ours']) / get(v['stock']):.2f}"
        out.append(f"| {label} | " + " | ".join(cells) + f" | {extra} |")

    seq = r["settings"]["sequential_reads"]
    row(f"sequential reads ({seq}), median ms", lambda x: x["sequential"]["median_ms"], ".1f", ratio=True)
    row("sequential, p90 ms", lambda x: x["sequential"]["p90_ms"], ".1f")
    row("sequential, mean ms", lambda x: x["sequential"]["mean_ms"], ".1f", ratio=True)
    row("executor builds, warm-up + sequential", lambda x: x["sequential"]["builds_incl_warmup"], "d")
    s = r["settings"]

    def vw(key: str) -> Callable[[dict[str, Any]], Any]:
        return lambda x: x.get("viewers", {}).get(key)

    label = f"{s['viewers']} viewers every {s['interval_s']:g} s for {s['duration_s']:g} s"
    row(f"{label}: answers (200 / polls)", vw("ok_200"), "d")
    row("viewers: answers with Nomad's messages", vw("with_nomad_messages"), "d")
    row("viewers: median answer ms", vw("median_ms"), ".1f", ratio=True)
    row("viewers: p95 answer ms", vw("p95_ms"), ".1f", ratio=True)
    row("viewers: NomadExecutor builds (all in the one worker)", vw("builds"), "d")
    row("viewers: builds per answer_ttl per worker (its own ttl)", vw("builds_per_answer_ttl_per_worker"), ".2f")
    row(
        "viewers: builds per answer (1.00: no answer was reused)",
        lambda x: x["viewers"]["builds"] / x["viewers"]["polls"] if x.get("viewers", {}).get("polls") else None,
        ".2f",
    )
    row("helper processes running at the end (not leaks)", lambda x: x["helpers_running"], "d")
    row("other processes left running after the load", lambda x: len(x["left_running_after_load"]), "d")
    row("processes left after a graceful server stop", lambda x: len(x["left_running_after_shutdown"]), "d")
    if "stock" in v and "ours" in v:
        o, st = v["ours"], v["stock"]
        seq_ratio = o["sequential"]["median_ms"] / st["sequential"]["median_ms"]
        med_ratio = o["viewers"]["median_ms"] / st["viewers"]["median_ms"]
        per_ttl = o["viewers"]["builds_per_answer_ttl_per_worker"]
        out += [
            "",
            f"targets: sequential ours/stock {seq_ratio:.2f} <= 2: {_status(seq_ratio <= 2)}; "
            f"viewers median ours/stock {med_ratio:.2f} <= 2: {_status(med_ratio <= 2)}; "
            f"builds per answer_ttl per worker {per_ttl:.2f} <= 1: {_status(per_ttl <= 1)}; "
            f"ours left running {len(o['left_running_after_load'])} + {len(o['left_running_after_shutdown'])}"
            f": {_status(not o['left_running_after_load'] and not o['left_running_after_shutdown'])}",
        ]
        for name in names:
            for key in ("left_running_after_load", "left_running_after_shutdown"):
                for proc in v[name][key]:
                    out.append(f"  {name}, {key}: {proc}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fallback", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start-methods", help="fallback reads under fork, spawn and forkserver")
    p.add_argument("--cell", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--reads", type=int, default=40, help="timed reads per method and executor (default 40)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up reads per method and executor (default 3)")
    p.add_argument("--block", type=int, default=5, help="consecutive reads of one method (default 5)")
    n = sub.add_parser("nomad", help="NomadExecutor on a real api-server: sequential reads and viewers")
    n.add_argument("--cell", required=True)
    n.add_argument("--out", type=Path, required=True)
    n.add_argument("--reads", type=int, default=30, help="timed sequential reads (default 30)")
    n.add_argument("--warmup", type=int, default=3, help="sequential warm-up reads (default 3)")
    n.add_argument("--viewers", type=int, default=10)
    n.add_argument("--interval", type=float, default=3.0)
    n.add_argument("--duration", type=float, default=60.0)
    n.add_argument("--variants", nargs="+", default=[v.key for v in VARIANTS], choices=[v.key for v in VARIANTS])
    r = sub.add_parser("report", help="print the tables from result files")
    r.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "report":
        results = [json.loads(path.read_text()) for path in args.results if path.exists()]
        print(render(results))
        return 0 if results else 1
    run = start_methods if args.command == "start-methods" else nomad
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(render([result]))
    print(f"(results: {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
