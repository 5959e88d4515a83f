"""
The real ``airflow api-server`` under load and under worker recycling, reading three kinds of RUNNING tasks.

* ``kubernetes``: a KubernetesExecutor task whose pod the fake Kubernetes API serves (class-level reader);
* ``plain``: a ``PlainExecutor`` task (no ``get_task_log`` override: nothing may be built);
* ``fallback``: a ``ForkingLogExecutor`` task (overrides ``get_task_log``, no reader: a short-lived
  executor forking a Manager is built, read and torn down per request).

Both executors journal their constructions (``AIRFLOW_EXECUTOR_LOGS_BUILD_JOURNAL``), which proves what
was built, and that no two constructions of one class ever overlapped in one process.
"""

from __future__ import annotations

import concurrent.futures
import random
import re
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from airflow_executor_logs_testing.executor_journal import JOURNAL_ENV, read_build_journal
from airflow_executor_logs_testing.executors import FALLBACK_LINE, FALLBACK_SOURCE, ForkingLogExecutor, PlainExecutor
from tests.e2e.conftest import FALLBACK_RUN, MANAGER_IN_INIT, PLAIN_RUN, POD_LINES, PROVIDER, Deployment, assert_tails
from tests.support.build_overlaps import build_intervals, overlapping_builds
from tests.support.process_control import find_processes_with_env
from tests.support.sandbox import RUN_ID, TASK_ID, ApiServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 64
K8S_ONLY_REQUESTS = 64
WARMUP_REQUESTS = 128
LOAD_REQUESTS = 1050
#: Allowed RSS growth of a worker between the end of the warm-up and the end of the load.
RSS_GROWTH_LIMIT = 30 * 1024 * 1024
CLIENT_TIMEOUT = 120.0
REFRESH_INTERVAL = 3
REFRESH_CYCLES = 10
RECYCLE_DEADLINE = 300.0
NOTICE = "Executor logs unavailable"

#: Each log request holds a DB connection while it reads. The default pool (5 + 10 per worker, 30 s wait)
#: turns 64 concurrent reads on a cold worker into HTTP 500s and a stalled event loop (the token check
#: queries the DB on it), which is not what this test measures. Airflow 3.2 ignores the pool settings for
#: sqlite (so the engine args carry them); 3.3 applies them over the engine args.
SERVER_ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_ENGINE_ARGS": '{"pool_size": 48, "max_overflow": 16}',
    "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "48",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "16",
}


@dataclass(frozen=True)
class Kind:
    """One kind of RUNNING task instance: its run and the executor it names."""

    name: str
    run_id: str
    executor: str


KUBERNETES = Kind("kubernetes", RUN_ID, "KubernetesExecutor")
PLAIN = Kind("plain", *PLAIN_RUN)
FALLBACK = Kind("fallback", *FALLBACK_RUN)
KINDS = (KUBERNETES, PLAIN, FALLBACK)
FALLBACK_TEXT = FALLBACK_LINE.format(task_id=TASK_ID, try_number=1)


def problem_with(kind: Kind, status: int, text: str) -> str | None:
    """Why a response for ``kind`` is wrong, or ``None`` when it is right."""
    if status != 200:
        return f"HTTP {status}: {text[:300]}"
    if NOTICE in text:
        at = text.index(NOTICE)
        return f"notice in the log: {text[at : at + 500]}"
    has_pod, has_fallback = POD_LINES[-1] in text and POD_LINES[0] in text, FALLBACK_TEXT in text
    if kind is KUBERNETES and not has_pod:
        return f"pod lines missing: {text[:500]}"
    if kind is FALLBACK and not (has_fallback and FALLBACK_SOURCE in text):
        return f"fallback line missing: {text[:500]}"
    if kind is PLAIN and (has_pod or has_fallback or POD_LINES[0] in text):
        return f"executor lines for a PlainExecutor task: {text[:500]}"
    return None


@dataclass(frozen=True)
class Result:
    kind: Kind
    problem: str | None
    elapsed: float


# -- clients -------------------------------------------------------------------------------------------
class Clients:
    """Up to ``CLIENTS`` concurrent HTTP clients (one keep-alive connection per thread), one token."""

    def __init__(self, server: ApiServer, *, keep_alive: bool = True, retry_resets: bool = False) -> None:
        self.server = server
        self.keep_alive = keep_alive
        # While gunicorn retires a worker, a connection it accepted but will not serve is reset (stock
        # Airflow alike). With ``retry_resets`` such a request is sent once more; wrong answers and 5xx
        # are never retried. ``resets`` counts them.
        self.retry_resets = retry_resets
        self.resets = 0
        self.headers = server.request_headers()
        self._local = threading.local()
        self._opened: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                base_url=self.server.base_url,
                timeout=CLIENT_TIMEOUT,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1 if self.keep_alive else 0),
            )
            self._local.client = client
            with self._lock:
                self._opened.append(client)
        return client

    def one(self, kind: Kind, ndjson: bool) -> Result:
        headers = dict(self.headers)
        if ndjson:
            headers["Accept"] = "application/x-ndjson"
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                r = self._client().get(self.server.task_log_path(run_id=kind.run_id), headers=headers)
                problem = problem_with(kind, r.status_code, r.text)
            except (httpx.ReadError, httpx.RemoteProtocolError) as err:
                problem = f"{type(err).__name__}: {err}"
                if self.retry_resets and attempt == 1:
                    with self._lock:
                        self.resets += 1
                    continue
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {err}"
            break
        return Result(kind, problem, time.monotonic() - started)

    def run(self, jobs: Sequence[Kind], concurrency: int = CLIENTS) -> tuple[list[Result], float]:
        """All ``jobs`` over ``concurrency`` threads; the results and the wall time."""
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="log-client") as pool:
            results = list(pool.map(self.one, jobs, [n % 2 == 1 for n in range(len(jobs))]))
        return results, time.monotonic() - started

    def close(self) -> None:
        with self._lock:
            for client in self._opened:
                client.close()
            self._opened.clear()


def mixed_jobs(count: int, seed: int) -> list[Kind]:
    """``count`` requests, the three kinds in equal shares, shuffled reproducibly."""
    jobs = [KINDS[n % len(KINDS)] for n in range(count)]
    random.Random(seed).shuffle(jobs)
    return jobs


def problems(results: Sequence[Result]) -> list[str]:
    return [f"{r.kind.name}: {r.problem}" for r in results if r.problem is not None]


def assert_ok(results: Sequence[Result], phase: str, server: ApiServer) -> None:
    """Every response right; otherwise say how many were wrong, show three, and what the server built."""
    errors = problems(results)
    if errors:
        text = server.log_text()
        built = {cls: len(re.findall(rf"Loaded executor: \S*{cls}", text)) for cls in ("Kubernetes", "ForkingLog")}
        no_reader = re.findall(r"(\w+) overrides get_task_log but has no class-level log reader", text)
        diagnosis = f"executors built by the server: {built}; classes read without a reader: {sorted(set(no_reader))}"
        raise AssertionError(
            f"{phase}: {len(errors)} of {len(results)} responses are wrong ({diagnosis}), e.g.\n"
            + "\n".join(errors[:3])
        )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


# -- process accounting --------------------------------------------------------------------------------
class ServerWatch:
    """
    Samples a server in the background: the Managers under its TMPDIR (when each was first and last
    seen) and its HTTP worker pids (so short-lived workers of a refresh cycle are counted too).
    """

    def __init__(self, server: ApiServer, interval: float = 0.5) -> None:
        self.server = server
        self.interval = interval
        self.seen: dict[tuple[int, float], tuple[float, float]] = {}  # (pid, create_time) -> first/last seen
        self.worker_first_seen: dict[int, float] = {}  # HTTP worker pid -> time.monotonic() first seen
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="manager-watch", daemon=True)

    def __enter__(self) -> ServerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for m in self.server.managers():
                first, _ = self.seen.get((m.pid, m.create_time), (now, now))
                self.seen[(m.pid, m.create_time)] = (first, now)
            seen_at = time.monotonic()
            for pid in self.server.worker_pids():
                self.worker_first_seen.setdefault(pid, seen_at)
            self.samples += 1
            self._stop.wait(self.interval)

    def seen_between(self, start: float, end: float) -> list[int]:
        """Pids of Managers alive at some sample in ``[start, end]`` (``time.time()`` values)."""
        return sorted(pid for (pid, _), (first, last) in self.seen.items() if first <= end and last >= start)

    def longest_life(self) -> float:
        """Longest observed lifetime (creation to last sighting) of any Manager, in seconds."""
        return max((last - created for (_, created), (_, last) in self.seen.items()), default=0.0)


def strays(server: ApiServer, settle: float = 30.0) -> list[str]:
    """
    Live processes with the server's TMPDIR outside its tree, still so after ``settle`` seconds.

    A worker that was exiting (or just forked) while we looked is not a stray: the check returns as soon as
    every process first seen is gone or in the tree, so the bound is generous, for a loaded machine.
    """

    def candidates() -> dict[int, psutil.Process]:
        found = {p.pid: p for p in find_processes_with_env("TMPDIR", server.tmpdir)}
        tree = server.tree_pids()
        return {pid: p for pid, p in found.items() if pid not in tree and _alive(p)}

    first = candidates()
    give_up = time.monotonic() + settle
    while first and time.monotonic() < give_up:
        time.sleep(0.1)
        first = {pid: p for pid, p in candidates().items() if pid in first}
    found = []
    for pid, process in first.items():
        try:
            found.append(f"{pid} ppid={process.ppid()} {' '.join(process.cmdline())[:120]}")
        except psutil.Error:
            continue
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def rss(pids: Sequence[int]) -> dict[int, int]:
    return {pid: psutil.Process(pid).memory_info().rss for pid in pids}


def assert_nothing_survives(deployment: Deployment, server: ApiServer) -> None:
    assert not server.running
    assert server.managers() == []
    assert deployment.sandbox.managers() == []
    assert [p.pid for p in find_processes_with_env("TMPDIR", server.tmpdir)] == []


def check_journal(path: Path, fallback_reads: int, resets: int = 0) -> str:
    """
    Assert what was built (only ForkingLogExecutor, at most once per fallback read, never two at once); summarize.

    Identical reads in flight together share one build, and an answer is reused for ``answer_ttl``, so
    there may be fewer builds than reads, never more; at least one when any read went that way. A request
    reset by a retiring worker and sent again (``resets``) may have built one more.
    """
    entries = read_build_journal(path)
    intervals = build_intervals(entries)
    assert [i for i in intervals if i.executor == PlainExecutor.__name__] == [], "PlainExecutor was built"
    forking = [i for i in intervals if i.executor == ForkingLogExecutor.__name__]
    assert [i for i in forking if i.end is None] == [], "a ForkingLogExecutor construction never finished"
    assert min(fallback_reads, 1) <= len(forking) <= fallback_reads + resets, (
        f"{len(forking)} constructions for {fallback_reads} fallback reads ({resets} resets retried)"
    )
    overlaps = overlapping_builds(intervals)
    assert overlaps == [], f"{len(overlaps)} overlapping constructions in one process, e.g. {overlaps[:3]}"
    durations = [i.end - i.start for i in forking if i.end is not None]
    per_pid: dict[int, int] = {}
    for i in forking:
        per_pid[i.pid] = per_pid.get(i.pid, 0) + 1
    return (
        f"{len(forking)} ForkingLogExecutor builds for {fallback_reads} fallback reads in {len(per_pid)} processes "
        "(at most "
        f"{max(per_pid.values())} per process), "
        f"none overlapping; build p50={statistics.median(durations) * 1000:.0f}ms "
        f"max={max(durations) * 1000:.0f}ms; PlainExecutor built 0 times"
        if durations
        else "no builds"
    )


def check_server_log(server: ApiServer) -> int:
    """No KubernetesExecutor was ever loaded and no fallback deadline hit; return the positive-control count."""
    text = server.log_text()
    no_reader = set(re.findall(r"(\w+) overrides get_task_log but has no class-level log reader", text))
    k8s_built = len(re.findall(r"Loaded executor: \S*KubernetesExecutor", text))
    built = f"{k8s_built} KubernetesExecutor built; classes read through a short-lived executor: {sorted(no_reader)}"
    assert no_reader <= {ForkingLogExecutor.__name__}, built
    assert k8s_built == 0, built
    assert "did not return logs within" not in text, "the fallback deadline was hit"
    return len(re.findall(r"Loaded executor: \S*ForkingLogExecutor", text))


@dataclass
class Phase:
    name: str
    results: list[Result] = field(default_factory=list)
    wall: float = 0.0

    def line(self) -> str:
        latencies = [r.elapsed for r in self.results]
        rate = len(self.results) / self.wall if self.wall else float("nan")
        parts = [
            f"[{self.name}] {len(self.results)} requests in {self.wall:.1f}s = {rate:.1f} req/s; "
            f"p50={percentile(latencies, 0.5) * 1000:.0f}ms p95={percentile(latencies, 0.95) * 1000:.0f}ms"
        ]
        for kind in KINDS:
            own = [r.elapsed for r in self.results if r.kind is kind]
            if own:
                parts.append(
                    f"{kind.name}: n={len(own)} p50={percentile(own, 0.5) * 1000:.0f}ms "
                    f"p95={percentile(own, 0.95) * 1000:.0f}ms"
                )
        return " | ".join(parts)


# -- tests ---------------------------------------------------------------------------------------------
def test_load_64_clients_mixed_executors(deployment: Deployment, tmp_path: Path) -> None:
    """64 concurrent clients, 1,050 measured reads of three kinds: no error, no process, no overlap, flat RSS."""
    journal = tmp_path / "builds.journal"
    server = deployment.sandbox.api_server(
        workers=2, server_type="uvicorn", extra_env={**SERVER_ENV, JOURNAL_ENV: str(journal)}
    )
    k8s_log_reads_before = sum(r.route == "log" for r in deployment.kube.requests())
    test_started = time.monotonic()
    with server, ServerWatch(server) as watch:
        print(f"\n[load] api-server ready in {server.ready_after:.1f}s")
        workers = server.worker_pids()
        assert len(workers) == 2, f"expected 2 uvicorn workers, got {workers}"
        clients = Clients(server)
        try:
            # 1. Kubernetes only: on provider < 10.19 building a KubernetesExecutor would start a Manager.
            k8s_only = Phase("kubernetes-only")
            k8s_started = time.time()
            k8s_only.results, k8s_only.wall = clients.run([KUBERNETES] * K8S_ONLY_REQUESTS)
            k8s_managers = watch.seen_between(k8s_started, time.time())
            assert_ok(k8s_only.results, "kubernetes-only", server)
            assert k8s_managers == [], f"Managers appeared while only Kubernetes logs were read: {k8s_managers}"
            assert read_build_journal(journal) == []

            # 2. Warm-up with the mix, then the baseline.
            warmup = Phase("warm-up")
            warmup.results, warmup.wall = clients.run(mixed_jobs(WARMUP_REQUESTS, seed=1))
            assert_ok(warmup.results, "warm-up", server)
            time.sleep(1.0)
            tree_before = server.tree_pids()
            rss_before = rss(workers)
            assert server.managers() == []

            # 3. The measured load.
            load = Phase("load")
            load.results, load.wall = clients.run(mixed_jobs(LOAD_REQUESTS, seed=2))
            assert_ok(load.results, "load", server)

            # 4. Nothing left, nothing built that should not have been, memory flat.
            managers_after = server.managers()
            tree_after = server.tree_pids()
            rss_after = rss(workers)
            outside = strays(server)
        finally:
            clients.close()
        assert managers_after == [], f"Managers left after the load: {managers_after}"
        assert tree_after == tree_before, f"server tree changed: before {tree_before}, after {tree_after}"
        assert outside == [], f"processes with the server's TMPDIR outside its tree: {outside}"
        fallback_reads = sum(r.kind is FALLBACK for phase in (warmup, load) for r in phase.results)
        journal_summary = check_journal(journal, fallback_reads)
        loaded_control = check_server_log(server)
        k8s_reads = sum(r.kind is KUBERNETES for phase in (k8s_only, warmup, load) for r in phase.results)
        pod_log_calls = sum(r.route == "log" for r in deployment.kube.requests()) - k8s_log_reads_before
        # Reads of one task at once share a pod-log call (coalescing), so there may be fewer calls than reads.
        assert 0 < pod_log_calls <= k8s_reads, f"{pod_log_calls} pod-log calls for {k8s_reads} Kubernetes reads"

        for phase in (k8s_only, warmup, load):
            print(phase.line())
        growth = {pid: rss_after[pid] - rss_before[pid] for pid in workers}
        mb = 1024 * 1024
        print(
            "[load] RSS per worker (MB) "
            + ", ".join(
                f"{pid}: {rss_before[pid] / mb:.1f} -> {rss_after[pid] / mb:.1f} ({growth[pid] / mb:+.1f})"
                for pid in workers
            )
        )
        print(f"[load] journal: {journal_summary}")
        print(
            f"[load] Managers during the Kubernetes-only phase: 0 (provider {PROVIDER} forks one per "
            f"KubernetesExecutor: {MANAGER_IN_INIT})"
        )
        print(
            f"[load] Managers: {len(watch.seen)} short-lived seen in {watch.samples} samples, longest "
            f"{watch.longest_life():.1f}s, 0 left; 'Loaded executor' ForkingLogExecutor lines={loaded_control}, "
            f"KubernetesExecutor lines=0; pod-log calls={pod_log_calls} for {k8s_reads} Kubernetes reads"
        )
        assert all(g < RSS_GROWTH_LIMIT for g in growth.values()), f"RSS grew by {growth} bytes"
    assert_nothing_survives(deployment, server)
    print(f"[load] test body {time.monotonic() - test_started:.1f}s (server start and stop included)")


def test_gunicorn_refresh_cycles_with_mixed_reads_leave_no_orphans(deployment: Deployment, tmp_path: Path) -> None:
    """At least 10 rolling refresh cycles, all three kinds read in each: no orphan at any point, no survivor."""
    journal = tmp_path / "builds.journal"
    server = deployment.sandbox.api_server(
        workers=2,
        server_type="gunicorn",
        worker_refresh_interval=REFRESH_INTERVAL,
        extra_env={**SERVER_ENV, JOURNAL_ENV: str(journal)},
    )
    test_started = time.monotonic()
    with server, ServerWatch(server) as watch:
        print(f"\n[recycle] api-server ready in {server.ready_after:.1f}s")
        # New connections, so that requests reach the new workers; a reset by a retiring worker is retried.
        clients = Clients(server, keep_alive=False, retry_resets=True)
        first = set(server.worker_pids())
        born: dict[int, float] = {}  # new worker pid -> when first seen (here or by the watch)
        bursts: list[tuple[float, float]] = []
        results: list[Result] = []

        def count_new_workers() -> int:
            now = time.monotonic()
            for pid, at in [*watch.worker_first_seen.items(), *((pid, now) for pid in server.worker_pids())]:
                if pid not in first:
                    born[pid] = min(born.get(pid, at), at)
            return len(born)

        recycling_started = time.monotonic()
        deadline = recycling_started + RECYCLE_DEADLINE
        try:
            while count_new_workers() < REFRESH_CYCLES * len(first):
                assert time.monotonic() < deadline, f"only {len(born)} new workers in {RECYCLE_DEADLINE}s"
                started = time.monotonic()
                burst, _ = clients.run(list(KINDS) * 2, concurrency=len(KINDS) * 2)
                bursts.append((started, time.monotonic()))
                results += burst
                assert_ok(burst, f"burst after {len(born)} new workers", server)
                assert server.managers() == [], "a Manager outlived its read"
                assert strays(server) == [], "orphans outside the server tree"
                time.sleep(0.3)
        finally:
            clients.close()
        recycling = time.monotonic() - recycling_started
        # A cycle ends when the last of its len(first) new workers shows up; each must overlap some burst.
        ends = sorted(born.values())[len(first) - 1 :: len(first)]
        windows = list(zip([recycling_started, *ends[:-1]], ends, strict=True))
        bursts_per_cycle = [sum(s < end and e > start for s, e in bursts) for start, end in windows]
        cycles = len(windows)
        assert cycles >= REFRESH_CYCLES
        # Reads must interleave with the refreshes. Under load a whole cycle can complete inside the
        # pause between two bursts (while the test counts processes), so one cycle in five may see none.
        unread = sum(n == 0 for n in bursts_per_cycle)
        assert unread <= cycles // 5, f"refresh cycles without reads: {bursts_per_cycle}"
        completed_in_log = server.log_text().count("Worker refresh cycle completed")
        fallback_reads = sum(r.kind is FALLBACK for r in results)
        journal_summary = check_journal(journal, fallback_reads, clients.resets)
        check_server_log(server)
        latencies = [r.elapsed for r in results]
        assert clients.resets <= 3, f"{clients.resets} connections reset by retiring workers"
        print(
            f"[recycle] {clients.resets} connections reset by retiring workers (retried); "
            f"{cycles} refresh cycles ({len(born)} new workers; server log: {completed_in_log} "
            f"completed) in {recycling:.1f}s = {recycling / max(cycles, 1):.1f}s per cycle; {len(results)} requests "
            f"({len(results) // len(KINDS)} per kind), bursts per cycle {bursts_per_cycle}; "
            f"p50={percentile(latencies, 0.5) * 1000:.0f}ms p95={percentile(latencies, 0.95) * 1000:.0f}ms"
        )
        print(f"[recycle] journal: {journal_summary}")
        assert_tails(deployment, server)  # a tailing read through the refreshed workers
        print(
            f"[recycle] Managers: {len(watch.seen)} short-lived seen in {watch.samples} samples, longest "
            f"{watch.longest_life():.1f}s, 0 after any burst, 0 orphans"
        )
        assert strays(server) == []
    assert_nothing_survives(deployment, server)
    print(f"[recycle] test body {time.monotonic() - test_started:.1f}s (server start and stop included)")
