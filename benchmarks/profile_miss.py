"""
Profile reads that miss the answer memory (``answer_ttl`` 1 µs) in one process, against the loopback API.

``python -m benchmarks.profile_miss [--reads N] [--size 100] [--sort tottime|cumulative] [--top 40]``
prints the median per-read time of the floor and of ours with answer reuse off (interleaved, unprofiled),
then cProfile's table of ``N`` reads of ours, with each function's share of a read and calls per read.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_miss", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=3000, help="profiled reads (default 3000)")
    parser.add_argument("--size", default="100", choices=[key for key, _, _ in bench.SIZES])
    parser.add_argument("--sort", default="tottime", help="pstats sort key (default tottime)")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="executor-logs-profile-") as tmp:
        home, kubeconfig = Path(tmp) / "airflow", Path(tmp) / "kubeconfig"
        (home / "logs").mkdir(parents=True)
        os.environ.update(bench.airflow_environment(home, kubeconfig))
        from airflow_executor_logs_testing import FakeKubeProcess

        with FakeKubeProcess(kubeconfig) as fake:
            bench.import_costs()
            for spec in bench.pod_specs():
                fake.add_pod(**spec)
            floor = bench.FloorReader(kubeconfig)
            pod = (
                floor.api.list_namespaced_pod(
                    namespace=bench.NAMESPACE, label_selector=floor.selector(bench.task_instance(args.size, ""))
                )
                .items[0]
                .metadata.name
            )

            def one_call(_: object) -> bytes:
                response = floor.api.read_namespaced_pod_log(
                    name=pod, namespace=bench.NAMESPACE, container="base", tail_lines=bench.TAIL, _preload_content=False
                )
                body: bytes = response.read()
                response.release_conn()
                return body

            ours = bench.ours_no_reuse_reader(home / "logs")
            ti = bench.task_instance(args.size, bench.KUBERNETES_EXECUTOR)
            floor_ti = bench.task_instance(args.size, bench.KUBERNETES_EXECUTOR)
            bench.check_result("ours", args.size, ours(ti))
            for _ in range(200):
                ours(ti)
                floor(floor_ti)
            taken: dict[str, list[int]] = {"floor": [], "one call": [], "ours": []}
            clock = time.perf_counter_ns
            for _ in range(100):
                for name, read, task in (("floor", floor, floor_ti), ("one call", one_call, ti), ("ours", ours, ti)):
                    for _ in range(10):
                        started = clock()
                        read(task)
                        taken[name].append(clock() - started)
            med = {name: statistics.median(values) / 1e6 for name, values in taken.items()}
            print(
                f"unprofiled medians (1,000 reads each, interleaved): floor {med['floor']:.3f} ms, one raw log "
                f"call {med['one call']:.3f} ms, ours answer reuse off {med['ours']:.3f} ms; ours/floor "
                f"{med['ours'] / med['floor']:.2f}, ours - one call {1e3 * (med['ours'] - med['one call']):.0f} us"
            )
            if args.reads == 0:
                return 0
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.reads):
                ours(ti)
            profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"profiled: {args.reads} reads, {total / args.reads * 1e3:.3f} ms a read under the profiler")
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][3 if args.sort == "cumulative" else 2])  # type: ignore[attr-defined]
    print(f"{'cum %':>6} {'own %':>6} {'calls/read':>10}  function")
    for (filename, line, name), (_, calls, tottime, cumtime, _) in rows[: args.top]:
        where = filename.split("site-packages/")[-1].split("/src/")[-1]
        print(
            f"{100 * cumtime / total:6.1f} {100 * tottime / total:6.1f} {calls / args.reads:10.2f}  "
            f"{where}:{line}({name})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
