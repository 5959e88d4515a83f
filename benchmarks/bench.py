"""
Time reads of a RUNNING task's Kubernetes pod log, one matrix cell per run.

``python -m benchmarks.bench --cell CELL --out FILE`` (``bash benchmarks/run.sh`` runs it on every cell).
The loopback Kubernetes API runs in its own process. This process imports Airflow and the provider
once, then measures each phase in a forked child, so every phase starts with no executor, no client
and no cache built:

* warm: floor, ours, ours with answer reuse off, stock and ours-fallback interleaved in blocks, per log size;
* cold: the first read in a fresh child, per variant, several children each;
* rss: ``10,000`` reads of ours, RSS before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import traceback
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

from airflow_executor_logs.utils.processes import is_gone, stop_processes

#: (key, label, lines in the pod); every variant reads the tail of 100 lines.
SIZES: tuple[tuple[str, str, int], ...] = (
    ("10", "10 lines", 10),
    ("100", "100 lines", 100),
    ("10000", "10,000 lines tailed to 100", 10_000),
)
TAIL = 100
NAMESPACE = "default"
KUBERNETES_EXECUTOR = "KubernetesExecutor"
#: ``benchmarks.fallback_executor.PATH``, spelled out so that importing this module imports no Airflow.
FALLBACK_EXECUTOR = "benchmarks.fallback_executor.PodLogExecutor"
VARIANTS: tuple[tuple[str, str], ...] = (
    ("floor", "floor (raw client calls)"),
    ("ours", "ours (class-level reader)"),
    ("ours_no_reuse", "ours, answer reuse off"),
    ("stock", "stock (core + provider)"),
    ("fallback", "ours, fallback (short-lived)"),
)
COLD_VARIANTS: tuple[str, ...] = ("floor", "ours", "stock")
#: Audit events that create a process.
SPAWN_EVENTS = frozenset({"os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "subprocess.Popen"})

#: ``answer_ttl`` of the "answer reuse off" variant: 0 means the default (1 s), so one microsecond.
NO_REUSE_TTL = 1e-6

TARGETS = {
    # One Kubernetes call per steady read (the pod is remembered) against the floor's two (issue 12).
    "ours_floor_max": 0.7,
    # Every read a miss (answer reuse off): what a viewer polling every ~3 s gets (issue 27, item 10).
    "ours_no_reuse_floor_max": 0.65,
    "stock_ours_min": 2.0,
    "cold_stock_ours_min": 10.0,
    "cold_target_cell": "airflow-3.2.1-k8s-10.18.0",
    "rss_growth_max_mb": 2.0,
    "ours_processes": 0,
}

_spawned = 0


def _count_spawns(event: str, args: tuple[Any, ...]) -> None:
    global _spawned
    if event in SPAWN_EVENTS:
        _spawned += 1


# --------------------------------------------------------------------------------------------
# Setup: environment, fake API, task instances
# --------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """What to measure, from the command line."""

    cell: str
    out: Path
    reads: int
    fallback_reads: int
    warmup: int
    block: int
    cold_samples: int
    rss_reads: int
    quick: bool
    kubeconfig: Path = Path()
    home: Path = Path()
    log: Path = Path()


def airflow_environment(home: Path, kubeconfig: Path) -> dict[str, str]:
    """The Airflow settings every process of the run uses (set before Airflow is imported)."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__EXECUTOR": f"{KUBERNETES_EXECUTOR},{FALLBACK_EXECUTOR}",
        "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(kubeconfig),
        "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
        "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": NAMESPACE,
    }


def task_instance(size_key: str, executor: str) -> Any:
    """A stand-in task instance with the fields log readers use; one task per log size."""
    return types.SimpleNamespace(
        executor=executor,
        dag_id="bench_dag",
        task_id=f"read_{size_key}",
        run_id="manual__2026-01-01T00:00:00+00:00",
        map_index=-1,
        try_number=1,
        hostname=f"bench-pod-{size_key}",
        queued_by_job_id=7,
        executor_config={},
        id=str(uuid.UUID(int=int(size_key))),
        state="running",
    )


def log_lines(count: int) -> list[str]:
    """``count`` log lines of about 120 bytes, each with a numbered marker."""
    return [
        f"[2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000+0000] {{task.py:{i % 400}}} INFO - "
        f"bench-line {i:05d} " + "payload " * 6
        for i in range(count)
    ]


#: The streamed-read phase: one pod of this many lines, read whole (the tail set to all of it).
STREAM_KEY = "20000"
STREAM_LINES = 10_000
#: A pod a tenth that size, still several 64 KiB chunks: a flat peak is the same for both.
STREAM_TENTH_KEY = "21000"


def pod_specs() -> list[dict[str, Any]]:
    """One pod per size (and one for the streamed read), labelled as the provider labels the task's worker pod."""
    from airflow_executor_logs_testing import task_pod

    specs = []
    streamed = ((STREAM_KEY, "streamed", STREAM_LINES), (STREAM_TENTH_KEY, "streamed", STREAM_LINES // 10))
    for key, _, count in (*SIZES, *streamed):
        ti = task_instance(key, KUBERNETES_EXECUTOR)
        specs.append(task_pod(ti, 1, log_lines(count), name=f"bench-pod-{key}", namespace=NAMESPACE))
    return specs


def expected_last_line(size_key: str) -> str:
    """The marker of the newest line, which every variant's tail must end with."""
    return f"bench-line {int(size_key) - 1:05d}"


def check_result(variant: str, size_key: str, result: Any) -> None:
    """Fail the run when a variant did not read the whole tail (its timing would mean nothing)."""
    if variant == "floor":
        text = result.decode()
    else:
        messages, chunks = result
        text = "\n".join(chunks)
        if not any("Found logs" in message for message in messages):
            raise RuntimeError(f"{variant} read no logs for size {size_key}: {messages}")
    markers = re.findall(r"bench-line \d{5}", text)
    want = min(int(size_key), TAIL)
    if len(markers) != want or markers[-1] != expected_last_line(size_key):
        last = markers[-1] if markers else None
        raise RuntimeError(f"{variant} read {len(markers)} lines (last {last}) for size {size_key}, expected {want}")


# --------------------------------------------------------------------------------------------
# The variants
# --------------------------------------------------------------------------------------------


class FloorReader:
    """The two raw client calls on one kept-alive ApiClient built from the kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self.api = client.CoreV1Api(client.ApiClient(configuration))
        self._selectors: dict[str, str] = {}

    def selector(self, ti: Any) -> str:
        """The provider's selector for the task's pod, built once per task."""
        from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

        selector = self._selectors.get(ti.task_id)
        if selector is None:
            selector = self._selectors[ti.task_id] = PodGenerator.build_selector_for_k8s_executor_pod(
                dag_id=ti.dag_id,
                task_id=ti.task_id,
                try_number=1,
                map_index=ti.map_index,
                run_id=ti.run_id,
                airflow_worker=ti.queued_by_job_id,
            )
        return selector

    def __call__(self, ti: Any) -> bytes:
        pods = self.api.list_namespaced_pod(namespace=NAMESPACE, label_selector=self.selector(ti)).items
        response = self.api.read_namespaced_pod_log(
            name=pods[0].metadata.name,
            namespace=NAMESPACE,
            container="base",
            tail_lines=TAIL,
            _preload_content=False,
        )
        body: bytes = response.read()
        response.release_conn()
        return body

    def tcp_nodelay(self) -> bool | None:
        """Whether the kept-alive connection has TCP_NODELAY set (None when none is pooled)."""
        import socket

        for pool in self.api.api_client.rest_client.pool_manager.pools._container.values():
            for connection in list(pool.pool.queue):
                sock = getattr(connection, "sock", None)
                if sock is not None:
                    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return None


def stock_reader(log_folder: Path) -> Callable[[Any], Any]:
    """What core does: ``FileTaskHandler`` builds the executor once per process, then ``get_task_log``."""
    from airflow.utils.log.file_task_handler import FileTaskHandler

    handler = FileTaskHandler(base_log_folder=str(log_folder))
    return lambda ti: handler._get_executor_get_task_log(ti)(ti, 1)


def ours_reader(log_folder: Path) -> Callable[[Any], Any]:
    """Our handler mixin: resolves the executor class and calls its class-level reader."""
    from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler

    handler = ExecutorLogsFileTaskHandler(base_log_folder=str(log_folder))
    return lambda ti: handler._get_executor_get_task_log(ti)(ti, 1)


def no_reuse_pipeline() -> Any:
    """
    A pipeline of its own (its own client and pod cache) with answer reuse off (``answer_ttl`` 1 µs), so
    every read is a miss. Its settings are read from ``conf`` as usual; only the answer policy sees
    ``answer_ttl`` replaced.
    """
    from dataclasses import replace

    from airflow_executor_logs.executors.answer_memory import AnswerMemory
    from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline

    pipeline = ExecutorLogPipeline()
    snapshots: list[Any] = [None, None]  # the pipeline's settings, and them with answer reuse off

    def no_reuse() -> Any:
        current = pipeline.settings
        if snapshots[0] is not current:
            snapshots[:] = [current, replace(current, answer_ttl=NO_REUSE_TTL)]
        return snapshots[1]

    pipeline.policy = AnswerMemory(no_reuse)
    return pipeline


def ours_no_reuse_reader(log_folder: Path) -> Callable[[Any], Any]:
    """Our handler on :func:`no_reuse_pipeline`: every read goes to the Kubernetes API."""
    from airflow_executor_logs.utils.log.task_handler import ExecutorLogsFileTaskHandler

    handler = ExecutorLogsFileTaskHandler(base_log_folder=str(log_folder))
    handler.executor_log_pipeline = no_reuse_pipeline()
    return lambda ti: handler._get_executor_get_task_log(ti)(ti, 1)


def make_reader(variant: str, settings: Settings) -> Callable[[Any], Any]:
    """Build the reader of ``variant`` (floor, ours, ours_no_reuse, stock or fallback)."""
    if variant == "floor":
        return FloorReader(settings.kubeconfig)
    if variant == "stock":
        return stock_reader(settings.home / "logs")
    if variant == "ours_no_reuse":
        return ours_no_reuse_reader(settings.home / "logs")
    return ours_reader(settings.home / "logs")  # ours and fallback differ by the task's executor


def executor_for(variant: str) -> str:
    """The ``ti.executor`` a variant reads with."""
    return FALLBACK_EXECUTOR if variant == "fallback" else KUBERNETES_EXECUTOR


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def descendant_pids() -> set[int]:
    """PIDs of every live descendant of this process."""
    try:
        return {child.pid for child in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def stop_pids(pids: set[int], grace: float = 3.0) -> None:
    """SIGTERM each PID, SIGKILL what is left after ``grace``, and reap our own children."""
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(pid))
    stop_processes(processes, grace, kill_wait=grace)


def shut_down_executors() -> None:
    """End the Managers of every executor core cached, then stop what is left of our descendants."""
    from multiprocessing.managers import BaseManager

    module = sys.modules.get("airflow.utils.log.file_task_handler")  # never imported: nothing to end
    instances: dict[str, Any] = getattr(getattr(module, "FileTaskHandler", None), "executor_instances", {})
    for executor in list(instances.values()):
        for value in vars(executor).values():
            if isinstance(value, BaseManager):
                with contextlib.suppress(Exception):
                    value.shutdown()
    instances.clear()
    stop_pids(descendant_pids())


def in_child(name: str, work: Callable[[], dict[str, Any]], log: Path, timeout: float) -> dict[str, Any]:
    """
    Run ``work`` in an isolated forked child (the package's own ``call_in_child``) and return its result.

    The child's stdout and stderr go to ``log``. Past ``timeout`` the child and its descendants are
    stopped and the phase fails; on return, anything the phase left running is stopped too.
    """
    from airflow_executor_logs.utils.isolated_call import IsolatedCallFailed, IsolatedCallTimedOut, call_in_child

    def logged() -> dict[str, Any]:
        log_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        print(f"--- {name} (pid {os.getpid()})", flush=True)
        try:
            return work()
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            with contextlib.suppress(Exception):
                shut_down_executors()

    sys.stdout.flush()
    sys.stderr.flush()
    try:
        return dict(call_in_child(logged, deadline=timeout, grace=3.0))
    except IsolatedCallTimedOut:
        raise TimeoutError(f"{name} took longer than {timeout:g} s") from None
    except IsolatedCallFailed as err:
        raise RuntimeError(f"{name} failed: {err} (traceback in {log})") from None


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def summarize(samples_ns: list[int]) -> dict[str, float]:
    """Median, p95 (nearest rank), mean, min and max in milliseconds."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {
        "n": n,
        "median_ms": statistics.median(ordered) / 1e6,
        "p95_ms": ordered[max(math.ceil(0.95 * n) - 1, 0)] / 1e6,
        "mean_ms": statistics.fmean(ordered) / 1e6,
        "min_ms": ordered[0] / 1e6,
        "max_ms": ordered[-1] / 1e6,
    }


@dataclass
class ProcessTally:
    """Processes a variant created (audit events) and left running (new live descendants)."""

    created: int = 0
    left: set[int] = field(default_factory=set)

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        before_spawned, before = _spawned, descendant_pids()
        try:
            yield
        finally:
            self.created += _spawned - before_spawned
            self.left |= descendant_pids() - before

    def as_dict(self) -> dict[str, int]:
        alive = {pid for pid in self.left if not is_gone(pid)}
        return {"created": self.created, "left_running": len(alive)}


# --------------------------------------------------------------------------------------------
# Phases (each runs in a forked child)
# --------------------------------------------------------------------------------------------


def warm_phase(settings: Settings, count_requests: Callable[[], int] | None = None) -> dict[str, Any]:
    """
    Steady-state per-read time of every variant, interleaved in blocks, per log size; with
    ``count_requests`` (the fake API's request counter), the Kubernetes requests per read too.
    """
    readers = {name: make_reader(name, settings) for name, _ in VARIANTS}
    tallies = {name: ProcessTally() for name, _ in VARIANTS}
    rounds = max(math.ceil(settings.reads / settings.block), 1)
    blocks = {name: settings.block for name, _ in VARIANTS}
    blocks["fallback"] = max(math.ceil(settings.fallback_reads / rounds), 1)
    warmups = {name: settings.warmup for name, _ in VARIANTS}
    warmups["fallback"] = max(settings.warmup // 5, 2)
    results: dict[str, dict[str, Any]] = {}
    clock = time.perf_counter_ns
    for size_key, _, _ in SIZES:
        tis = {name: task_instance(size_key, executor_for(name)) for name, _ in VARIANTS}
        for name, _ in VARIANTS:
            with tallies[name].watch():
                check_result(name, size_key, readers[name](tis[name]))
                for _ in range(warmups[name]):
                    readers[name](tis[name])
        samples: dict[str, list[int]] = {name: [] for name, _ in VARIANTS}
        requests = {name: 0 for name, _ in VARIANTS}
        order = [name for name, _ in VARIANTS]
        for round_index in range(rounds):
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                read, ti, taken = readers[name], tis[name], samples[name]
                requests_before = count_requests() if count_requests is not None else 0
                with tallies[name].watch():
                    for _ in range(blocks[name]):
                        started = clock()
                        read(ti)
                        taken.append(clock() - started)
                if count_requests is not None:
                    requests[name] += count_requests() - requests_before
        results[size_key] = {name: summarize(samples[name]) for name, _ in VARIANTS}
        if count_requests is not None:
            for name, _ in VARIANTS:
                results[size_key][name]["kube_requests_per_read"] = requests[name] / len(samples[name])
    return {
        "per_size": results,
        "processes": {name: tally.as_dict() for name, tally in tallies.items()},
        "client_tcp_nodelay": floor.tcp_nodelay() if isinstance(floor := readers["floor"], FloorReader) else None,
    }


def cold_read(variant: str, settings: Settings) -> dict[str, Any]:
    """
    The first read in this fresh process.

    The floor's client build is part of its first read. The handlers of stock and ours are built
    before the clock starts, as Airflow builds them when it configures logging at startup.
    """
    ti = task_instance("100", executor_for(variant))
    tally = ProcessTally()
    with tally.watch():
        started = time.perf_counter_ns()
        read = make_reader(variant, settings) if variant == "floor" else None
        if read is None:
            read = make_reader(variant, settings)
            started = time.perf_counter_ns()
        result = read(ti)
        elapsed = time.perf_counter_ns() - started
    check_result(variant, "100", result)
    teardown_started = time.perf_counter_ns()
    shut_down_executors()
    return {
        "first_read_ms": elapsed / 1e6,
        "teardown_ms": (time.perf_counter_ns() - teardown_started) / 1e6,
        "processes_created": tally.created,
        "processes_left_running": len(tally.left),
    }


def rss_phase(settings: Settings) -> dict[str, Any]:
    """RSS growth over ``settings.rss_reads`` reads of ours, cycling through the sizes, after warm-up."""
    read = ours_reader(settings.home / "logs")
    tis = [task_instance(key, KUBERNETES_EXECUTOR) for key, _, _ in SIZES]
    me = psutil.Process()
    tally = ProcessTally()
    with tally.watch():
        for index in range(max(settings.warmup * 2, 30)):
            read(tis[index % len(tis)])
        gc.collect()
        before = me.memory_info().rss
        trend: list[float] = []
        step = max(settings.rss_reads // 10, 1)
        started = time.perf_counter_ns()
        for index in range(settings.rss_reads):
            read(tis[index % len(tis)])
            if (index + 1) % step == 0:
                gc.collect()
                trend.append((me.memory_info().rss - before) / 2**20)
        elapsed = time.perf_counter_ns() - started
        gc.collect()
        after = me.memory_info().rss
    return {
        "reads": settings.rss_reads,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "growth_mb": (after - before) / 2**20,
        "trend_mb": trend,
        "mean_read_ms": elapsed / settings.rss_reads / 1e6,
        "processes": tally.as_dict(),
    }


def stream_phase(settings: Settings) -> dict[str, Any]:
    """
    One read of a 10,000-line pod, read whole: ours streamed (lines consumed one by one, as core does on
    3.4), ours in the list form, and stock's list form. Peak Python heap (tracemalloc) and median time.
    Ours with answer reuse off: every read is one from the API, not an answer given again from memory.
    """
    import tracemalloc

    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    os.environ["AIRFLOW__KUBERNETES_EXECUTOR__RUNNING_POD_LOG_LINES"] = str(STREAM_LINES)  # providers 10.20+
    KubernetesExecutor.RUNNING_POD_LOG_LINES = STREAM_LINES  # type: ignore[attr-defined]  # older providers
    ti = task_instance(STREAM_KEY, KUBERNETES_EXECUTOR)
    pipeline = no_reuse_pipeline()
    stock = KubernetesExecutor()  # on 10.18.0 this forks a Manager, shut down below

    def ours_streamed(read_ti: Any = ti) -> int:
        _, streams = pipeline.read_streaming(read_ti, 1)
        return sum(1 for stream in streams for _ in stream)

    tenth_ti = task_instance(STREAM_TENTH_KEY, KUBERNETES_EXECUTOR)

    def ours_list() -> int:
        _, logs = pipeline.read(ti, 1)
        return sum(log.count("bench-line ") for log in logs)

    def stock_list() -> int:
        _, logs = stock.get_task_log(ti, 1)
        return sum(log.count("bench-line ") for log in logs)

    variants = {
        "ours, streamed": ours_streamed,
        "ours, list": ours_list,
        "stock, list": stock_list,
        "ours, streamed, a tenth of the lines": lambda: ours_streamed(tenth_ti),
    }
    results: dict[str, Any] = {}
    try:
        for name, read in variants.items():
            lines = read()  # warm-up, and the check
            expected = STREAM_LINES // 10 if name.endswith("a tenth of the lines") else STREAM_LINES
            if lines != expected:
                raise AssertionError(f"{name} read {lines} lines, not {expected}")
            gc.collect()
            tracemalloc.start()
            tracemalloc.reset_peak()
            read()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            samples = []
            for _ in range(max(settings.fallback_reads // 10, 5)):
                started = time.perf_counter_ns()
                read()
                samples.append(time.perf_counter_ns() - started)
            median_ms = statistics.median(samples) / 1e6
            results[name] = {
                "lines": lines,
                "peak_kib": peak / 1024,
                "median_ms": median_ms,
                "us_per_line": median_ms * 1000 / lines,
            }
    finally:
        manager = getattr(stock, "_manager", None)
        if manager is not None:
            manager.shutdown()
    return {"lines": STREAM_LINES, "line_bytes": len(log_lines(1)[0]) + 1, "variants": results}


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


#: What an API server has imported before its first log read, and the first read of every variant would
#: import the same way: the provider and our reader. Forked children start with these done.
CORE_MODULES = (
    "airflow.configuration",
    "airflow.api_fastapi.auth.tokens",  # the API server's JWT auth; BaseExecutor.__init__ imports it too
    "airflow.utils.log.file_task_handler",
    "airflow_executor_logs.utils.log.task_handler",
)
PROVIDER_MODULES = (
    "airflow.providers.cncf.kubernetes.executors.kubernetes_executor",
    "airflow.providers.cncf.kubernetes.kube_client",
    "airflow.providers.cncf.kubernetes.pod_generator",
    "airflow_executor_logs.executors.kubernetes.reader",
    "benchmarks.fallback_executor",
)


def import_costs() -> dict[str, float]:
    """Import :data:`CORE_MODULES`, then :data:`PROVIDER_MODULES`; seconds each took."""
    costs = {}
    for key, modules in (("airflow_core_s", CORE_MODULES), ("provider_s", PROVIDER_MODULES)):
        started = time.perf_counter()
        for module in modules:
            importlib.import_module(module)
        costs[key] = time.perf_counter() - started
    return costs


def run(settings: Settings) -> dict[str, Any]:
    """Start the fake API, run every phase in its own child, and collect the results."""
    from airflow_executor_logs_testing import FakeKubeProcess

    started = time.monotonic()
    load_before = os.getloadavg()
    with FakeKubeProcess(settings.kubeconfig) as fake:
        imports = import_costs()
        for spec in pod_specs():
            fake.add_pod(**spec)
        say(f"fake Kubernetes API pid {fake.pid} at {fake.url}; imports took {sum(imports.values()):.1f} s")
        cold: dict[str, list[dict[str, Any]]] = {name: [] for name in COLD_VARIANTS}
        for index in range(settings.cold_samples):
            for name in COLD_VARIANTS[index % 3 :] + COLD_VARIANTS[: index % 3]:
                cold[name].append(
                    in_child(f"cold {name} #{index}", lambda n=name: cold_read(n, settings), settings.log, 120)
                )
        say(f"cold: {settings.cold_samples} fresh processes per variant done")
        warm = in_child("warm", lambda: warm_phase(settings, lambda: int(fake.stats()["requests"])), settings.log, 1200)
        say("warm: done")
        rss = in_child("rss", lambda: rss_phase(settings), settings.log, 900)
        say("rss: done")
        stream = in_child("stream", lambda: stream_phase(settings), settings.log, 600)
        say("stream: done")
        server = fake.stats()
    return {
        "cell": settings.cell,
        "versions": {
            "python": platform.python_version(),
            "airflow": version("apache-airflow-core"),
            "cncf_kubernetes": version("apache-airflow-providers-cncf-kubernetes"),
            "kubernetes": version("kubernetes"),
            "urllib3": version("urllib3"),
        },
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
        "settings": {
            "reads": settings.reads,
            "fallback_reads": settings.fallback_reads,
            "warmup": settings.warmup,
            "block": settings.block,
            "cold_samples": settings.cold_samples,
            "rss_reads": settings.rss_reads,
            "quick": settings.quick,
            "tail_lines": TAIL,
            "sizes": {key: count for key, _, count in SIZES},
        },
        "imports": imports,
        "warm": warm,
        "cold": {name: summarize_cold(samples) for name, samples in cold.items()},
        "rss": rss,
        "stream": stream,
        "fake_api": server,
        "elapsed_s": time.monotonic() - started,
    }


def summarize_cold(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median first read over the fresh processes, and the worst process count."""
    return {
        "n": len(samples),
        "median_ms": statistics.median(s["first_read_ms"] for s in samples),
        "min_ms": min(s["first_read_ms"] for s in samples),
        "max_ms": max(s["first_read_ms"] for s in samples),
        "teardown_median_ms": statistics.median(s["teardown_ms"] for s in samples),
        "processes_created": max(s["processes_created"] for s in samples),
        "processes_left_running": max(s["processes_left_running"] for s in samples),
    }


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"   {message}", file=sys.stderr, flush=True)


def parse_settings(argv: list[str] | None) -> Settings:
    """Settings from the command line; ``--quick`` shrinks every count for a smoke run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", required=True, help="matrix cell name, e.g. airflow-3.2.1-k8s-10.18.0")
    parser.add_argument("--out", required=True, type=Path, help="JSON result file")
    parser.add_argument("--quick", action="store_true", help="few reads of each kind: a smoke run, not a measurement")
    parser.add_argument("--reads", type=int, help="timed reads per variant and size (default 1000; quick 100)")
    parser.add_argument("--fallback-reads", type=int, help="timed fallback reads per size (default 200; quick 20)")
    parser.add_argument("--warmup", type=int, help="warm-up reads per variant and size (default 50; quick 10)")
    parser.add_argument("--block", type=int, default=10, help="consecutive reads of one variant (default 10)")
    parser.add_argument("--cold-samples", type=int, help="fresh processes per cold variant (default 7; quick 2)")
    parser.add_argument("--rss-reads", type=int, help="reads of ours for the RSS growth (default 10000; quick 1000)")
    args = parser.parse_args(argv)

    def pick(value: int | None, full: int, quick: int) -> int:
        return max(value if value is not None else (quick if args.quick else full), 1)

    return Settings(
        cell=args.cell,
        out=args.out,
        reads=pick(args.reads, 1000, 100),
        fallback_reads=pick(args.fallback_reads, 200, 20),
        warmup=pick(args.warmup, 50, 10),
        block=max(args.block, 1),
        cold_samples=pick(args.cold_samples, 7, 2),
        rss_reads=pick(args.rss_reads, 10_000, 1000),
        quick=args.quick,
    )


def main(argv: list[str] | None = None) -> int:
    """Measure one cell, print its table and write its JSON result file."""
    settings = parse_settings(argv)
    from benchmarks.report import render_cell

    settings.out.parent.mkdir(parents=True, exist_ok=True)
    settings.log = settings.out.with_suffix(".log")
    settings.log.write_text("", encoding="utf-8")
    sys.addaudithook(_count_spawns)
    with tempfile.TemporaryDirectory(prefix="executor-logs-bench-") as tmp:
        settings.home = Path(tmp) / "airflow"
        settings.kubeconfig = Path(tmp) / "kubeconfig"
        (settings.home / "logs").mkdir(parents=True)
        os.environ.update(airflow_environment(settings.home, settings.kubeconfig))
        try:
            result = run(settings)
        except Exception as err:
            print(f"benchmark of {settings.cell} failed: {err}", file=sys.stderr)
            print(f"(child output: {settings.log})", file=sys.stderr)
            return 1
    result["targets"] = TARGETS
    settings.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(render_cell(result))
    print(f"(results: {settings.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
