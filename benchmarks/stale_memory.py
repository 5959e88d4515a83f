"""
What the answer memory holds per worker when many tasks are watched: ``python -m benchmarks.stale_memory``.

One :class:`~airflow_executor_logs.executors.answer_memory.AnswerMemory` with the default settings
(``stale_lines_max_bytes`` 8 MiB) answers one good streamed read (the Kubernetes reader's shape) of each
of N tasks, read to its end as core reads it. Measured after the last read, with every answer
dropped: the entries kept, the bytes the memory counts, and the bytes ``tracemalloc`` sees still
allocated since the first read (what the memory really holds). Target (issue 19): at most 8 MiB
with 4,096 tasks remembered.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.answer_memory import AnswerMemory
from airflow_executor_logs.executors.answers import Answer, ReadKey

MIB = 1024 * 1024
EXECUTOR = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor"
RUN_ID = "scheduled__2026-12-05T12:00:00+00:00"
TARGET_BYTES = 8 * MIB
#: (tasks, lines per read, bytes per line): the target's shape, then longer lines and fewer tasks.
SHAPES = ((4096, 100, 120), (4096, 100, 400), (512, 100, 120))


def pod_lines(task: int, lines: int, width: int) -> list[str]:
    """``lines`` distinct log lines of about ``width`` bytes (a timestamp, then text)."""
    stamp = "2026-12-05T12:03:11.123456Z "
    filler = "x" * max(width - len(stamp) - 24, 1)
    return [f"{stamp}task {task:05d} line {n:04d} {filler}\n" for n in range(lines)]


def measure(tasks: int, lines: int, width: int) -> dict[str, Any]:
    settings = Settings(answer_ttl=1e-6)  # every read is a read: nothing is reused
    memory = AnswerMemory(lambda: settings)
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.take_snapshot()
    for task in range(tasks):
        key = ReadKey(EXECUTOR, "etl_orders_daily", f"load_partition_{task:05d}", RUN_ID, -1, 1)
        # The lines are built inside the read: once the answer is dropped, only what memory kept remains.
        answer = memory.answer(key, lambda t=task: Answer(["Found logs"], [iter(pod_lines(t, lines, width))]))
        for stream in answer.streams:
            for _ in stream:
                pass
        del answer
    gc.collect()
    held = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(baseline, "filename"))
    tracemalloc.stop()
    return {
        "tasks": tasks,
        "lines_per_read": lines,
        "bytes_per_line": width,
        "entries_kept": len(memory.lines),
        "counted_bytes": memory.lines.bytes,
        "measured_bytes": held,
        "bound_bytes": settings.stale_lines_max_bytes,
    }


def render(rows: Sequence[dict[str, Any]]) -> str:
    out = [
        "| tasks x lines x bytes/line | entries kept | counted | measured (tracemalloc) | measured / bound | target |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["measured_bytes"] / row["bound_bytes"]
        target = ""
        if row["tasks"] >= 4096:
            target = "pass" if row["measured_bytes"] <= TARGET_BYTES else "MISS"
        out.append(
            f"| {row['tasks']:,} x {row['lines_per_read']} x {row['bytes_per_line']} | {row['entries_kept']:,} "
            f"| {row['counted_bytes'] / MIB:.2f} MiB | {row['measured_bytes'] / MIB:.2f} MiB | {ratio:.2f} | {target} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    rows = [measure(*shape) for shape in SHAPES]
    print(render(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))
    return 0 if all(row["measured_bytes"] <= TARGET_BYTES for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
