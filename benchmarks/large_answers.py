"""
Large answers under viewers: ``python -m benchmarks.large_answers [--duration 60] [--viewers 10]``.

A RUNNING task's pod logs 10,000 lines of about 200 bytes, and ``[kubernetes_executor]
running_pod_log_lines`` is 10,000, so every read is the whole log (about 2 MB). Ten viewers poll one API
worker every 3 s, as the UI does, for 60 s, through core's hook (``_get_executor_get_task_log``), ours
and stock side by side, each variant in a forked child of its own. Measured per variant: Kubernetes
requests (the loopback API counts them), polls answered with the newest line, the median and p95 answer
time, and the RSS growth of the worker from its first answer to its last.

Targets (issue 24): ours makes at most one Kubernetes read per ``answer_ttl`` (1 s), and its RSS grows
by at most ``stale_lines_max_bytes`` (8 MiB) plus one answer. The RSS growth is also given after
``malloc_trim(0)`` (glibc's freed memory given back): what the worker really holds, apart from what
glibc keeps in per-thread arenas (``MALLOC_ARENA_MAX`` bounds those).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench import (
    KUBERNETES_EXECUTOR,
    NAMESPACE,
    airflow_environment,
    in_child,
    ours_reader,
    stock_reader,
    task_instance,
)

MIB = 1024 * 1024
LINES = 10_000
POLL_EVERY = 3.0
ANSWER_TTL = float(os.environ.get("AEL_BENCH_ANSWER_TTL", "1.0"))
BOUND = 8 * MIB
KEY = "30000"


def pod_lines() -> list[str]:
    """``LINES`` distinct lines of about 200 bytes, numbered."""
    filler = "payload " * 18
    return [
        f"2026-01-01T00:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z big-line {n:05d} {filler}"
        for n in range(LINES)
    ]


def viewers(variant: str, home: Path, count: int, duration: float, requests: Any) -> dict[str, Any]:
    """``count`` viewers poll one worker (this process) every 3 s for ``duration`` s."""
    import psutil

    ti = task_instance(KEY, KUBERNETES_EXECUTOR)
    read = (ours_reader if variant == "ours" else stock_reader)(home / "logs")
    newest = f"big-line {LINES - 1:05d}"
    rss_before = psutil.Process().memory_info().rss  # before the first read: what reading costs, kept answers included
    first = read(ti)
    answer_bytes = sum(len(chunk) for chunk in first[1])
    assert newest in first[1][-1], "the first read missed the newest line"
    del first
    requests_before = requests()
    times: list[float] = []
    fresh = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def viewer(offset: float) -> None:
        nonlocal fresh
        time.sleep(offset)
        while time.monotonic() < stop_at:
            started = time.monotonic()
            _, chunks = read(ti)
            took = time.monotonic() - started
            with lock:
                times.append(took)
                fresh += bool(chunks) and newest in chunks[-1]
            time.sleep(max(POLL_EVERY - took, 0.0))

    threads = [threading.Thread(target=viewer, args=(n * POLL_EVERY / count,)) for n in range(count)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 120)
    elapsed = time.monotonic() - started
    rss_after = psutil.Process().memory_info().rss
    trimmed = _malloc_trim()
    rss_trimmed = psutil.Process().memory_info().rss
    times.sort()
    return {
        "variant": variant,
        "polls": len(times),
        "with_newest_line": fresh,
        "kubernetes_requests": requests() - requests_before,
        "elapsed_s": elapsed,
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(len(times) * 0.95) - 1] * 1000,
        "rss_growth_mib": (rss_after - rss_before) / MIB,
        "rss_growth_trimmed_mib": (rss_trimmed - rss_before) / MIB if trimmed else float("nan"),
        "answer_mib": answer_bytes / MIB,
    }


def _malloc_trim() -> bool:
    """Give glibc's free memory back to the system (measurement only): what is left is what is held."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--viewers", type=int, default=10)
    args = parser.parse_args(argv)
    from airflow_executor_logs_testing import FakeKubeProcess, task_pod

    with tempfile.TemporaryDirectory(prefix="executor-logs-large-") as tmp:
        home, kubeconfig = Path(tmp) / "airflow", Path(tmp) / "kubeconfig"
        (home / "logs").mkdir(parents=True)
        os.environ.update(airflow_environment(home, kubeconfig))
        os.environ["AIRFLOW__KUBERNETES_EXECUTOR__RUNNING_POD_LOG_LINES"] = str(LINES)
        os.environ["AIRFLOW__EXECUTOR_LOGS__ANSWER_TTL"] = str(ANSWER_TTL)
        os.environ["AIRFLOW__EXECUTOR_LOGS__READ_TIMEOUT"] = "30"
        pod = task_pod(task_instance(KEY, KUBERNETES_EXECUTOR), 1, pod_lines(), name="big-pod", namespace=NAMESPACE)
        log = Path(tmp) / "children.log"
        with FakeKubeProcess(kubeconfig, pods=[pod]) as fake:
            requests = lambda: int(fake.stats()["requests"])  # noqa: E731
            rows = [
                in_child(
                    variant,
                    lambda v=variant: viewers(v, home, args.viewers, args.duration, requests),
                    log,
                    args.duration + 600,
                )
                for variant in ("ours", "stock")
            ]
    ours, stock = rows
    print(
        f"{args.viewers} viewers polling every {POLL_EVERY:g} s for {args.duration:g} s; "
        f"{LINES:,} lines per answer ({ours['answer_mib']:.1f} MiB)"
    )
    print(f"{'':<30}{'ours':>12}{'stock':>12}{'ours/stock':>12}")
    for name, key, fmt in (
        ("polls", "polls", "{:.0f}"),
        ("polls with the newest line", "with_newest_line", "{:.0f}"),
        ("Kubernetes requests", "kubernetes_requests", "{:.0f}"),
        ("median answer (ms)", "median_ms", "{:.1f}"),
        ("p95 answer (ms)", "p95_ms", "{:.1f}"),
        ("RSS growth (MiB)", "rss_growth_mib", "{:.1f}"),
        ("RSS growth, malloc_trim (MiB)", "rss_growth_trimmed_mib", "{:.1f}"),
    ):
        ratio = ours[key] / stock[key] if stock[key] else float("nan")
        print(f"{name:<30}{fmt.format(ours[key]):>12}{fmt.format(stock[key]):>12}{ratio:>12.2f}")
    allowed = ours["elapsed_s"] / ANSWER_TTL + 1
    reads_ok = ours["kubernetes_requests"] <= allowed
    memory_ok = ours["rss_growth_mib"] <= BOUND / MIB + ours["answer_mib"]
    print(
        f"target: <= 1 Kubernetes read per answer_ttl ({allowed:.0f} in {ours['elapsed_s']:.0f} s): "
        f"{'pass' if reads_ok else 'FAIL'}"
    )
    print(f"target: RSS growth <= {BOUND / MIB:.0f} MiB + one answer: {'pass' if memory_ok else 'FAIL'}")
    return 0 if reads_ok and memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
