"""
Ratios, targets and tables for benchmark results; imports neither Airflow nor the provider.

``python -m benchmarks.report RESULT.json ...`` prints the side-by-side comparison of the given cells.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

VARIANT_LABELS: dict[str, str] = {
    "floor": "floor (raw client calls)",
    "ours": "ours (class-level reader)",
    "ours_no_reuse": "ours, answer reuse off",
    "stock": "stock (core + provider)",
    "fallback": "ours, fallback (short-lived)",
}
SIZE_LABELS: dict[str, str] = {"10": "10 lines", "100": "100 lines", "10000": "10,000 -> tail 100"}


def ratios(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """
    Per size: ours/floor, stock/ours and fallback/ours, of the medians and of the p95s; with answer reuse
    off measured too (results from before it have no such variant), its ratio to the floor as well.
    """
    out: dict[str, dict[str, float]] = {}
    for size, variants in result["warm"]["per_size"].items():
        med = {name: stats["median_ms"] for name, stats in variants.items()}
        p95 = {name: stats["p95_ms"] for name, stats in variants.items()}
        out[size] = {
            "ours_floor": med["ours"] / med["floor"],
            "stock_ours": med["stock"] / med["ours"],
            "fallback_ours": med["fallback"] / med["ours"],
            "ours_floor_p95": p95["ours"] / p95["floor"],
            "stock_ours_p95": p95["stock"] / p95["ours"],
        }
        if "ours_no_reuse" in med:
            out[size]["ours_no_reuse_floor"] = med["ours_no_reuse"] / med["floor"]
            out[size]["ours_no_reuse_floor_p95"] = p95["ours_no_reuse"] / p95["floor"]
    cold = {name: stats["median_ms"] for name, stats in result["cold"].items()}
    out["cold"] = {"stock_ours": cold["stock"] / cold["ours"], "ours_floor": cold["ours"] / cold["floor"]}
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value and pass / miss (or "info" where it does not apply to the cell)."""
    limits = result["targets"]
    rat = ratios(result)
    sizes = list(result["warm"]["per_size"])
    worst_floor = max(rat[size]["ours_floor"] for size in sizes)
    worst_stock = min(rat[size]["stock_ours"] for size in sizes)
    cold_ratio = rat["cold"]["stock_ours"]
    growth = result["rss"]["growth_mb"]
    warm_procs = result["warm"]["processes"]["ours"]
    ours_processes = (
        warm_procs["created"]
        + result["rss"]["processes"]["created"]
        + result["cold"]["ours"]["processes_created"]
        + warm_procs["left_running"]
    )
    cold_applies = result["cell"] == limits["cold_target_cell"]
    streamed = stream_target(result)
    no_reuse = []
    if "ours_no_reuse_floor_max" in limits and all("ours_no_reuse_floor" in rat[size] for size in sizes):
        worst_miss = max(rat[size]["ours_no_reuse_floor"] for size in sizes)
        no_reuse.append(
            {
                "name": f"ours/floor, answer reuse off <= {limits['ours_no_reuse_floor_max']} (median, worst size)",
                "value": f"{worst_miss:.2f}",
                "status": _status(worst_miss <= limits["ours_no_reuse_floor_max"]),
            }
        )
    return [
        *([streamed] if streamed else []),
        *no_reuse,
        {
            "name": f"ours/floor <= {limits['ours_floor_max']} (median, worst size)",
            "value": f"{worst_floor:.2f}",
            "status": _status(worst_floor <= limits["ours_floor_max"]),
        },
        {
            "name": f"stock/ours >= {limits['stock_ours_min']:g} (median, worst size)",
            "value": f"{worst_stock:.2f}",
            "status": _status(worst_stock >= limits["stock_ours_min"]),
        },
        {
            "name": f"cold stock/ours >= {limits['cold_stock_ours_min']:g} (on {limits['cold_target_cell']})",
            "value": f"{cold_ratio:.1f}x",
            "status": _status(cold_ratio >= limits["cold_stock_ours_min"]) if cold_applies else "info",
        },
        {
            "name": f"RSS growth over {result['rss']['reads']:,} reads of ours < {limits['rss_growth_max_mb']:g} MB",
            "value": f"{growth:+.2f} MB",
            "status": _status(growth < limits["rss_growth_max_mb"]),
        },
        {
            "name": f"processes spawned by ours == {limits['ours_processes']}",
            "value": str(ours_processes),
            "status": _status(ours_processes == limits["ours_processes"]),
        },
    ]


def stream_target(result: dict[str, Any]) -> dict[str, Any] | None:
    """A streamed read's peak heap stays flat: ten times the lines cost at most 1.25 times the peak."""
    stream = result.get("stream")
    if not stream:
        return None
    variants = stream["variants"]
    streamed = variants["ours, streamed"]["peak_kib"]
    small = variants["ours, streamed, a tenth of the lines"]["peak_kib"]
    listed = variants["ours, list"]["peak_kib"]
    return {
        "name": f"streamed peak heap, {stream['lines']:,} vs {stream['lines'] // 10:,} lines <= 1.25x",
        "value": f"{streamed:,.0f} vs {small:,.0f} KiB = {streamed / small:.2f}x (list form: {listed:,.0f} KiB)",
        "status": _status(streamed <= 1.25 * small),
    }


def _status(ok: bool) -> str:
    return "pass" if ok else "MISS"


def _table(rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    """Align ``rows`` in columns: the first ``right_from`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(len(row) for row in rows))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < right_from else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def render_cell(result: dict[str, Any]) -> str:
    """The full table of one cell: per-read times, ratios, cold reads, processes, RSS and targets."""
    v = result["versions"]
    s = result["settings"]
    m = result["machine"]
    warm = result["warm"]["per_size"]
    sizes = list(warm)
    rat = ratios(result)
    out = [
        f"== {result['cell']}: airflow {v['airflow']} + cncf-kubernetes {v['cncf_kubernetes']} "
        f"(kubernetes {v['kubernetes']}, urllib3 {v['urllib3']}, python {v['python']})",
        f"   {m['cpus']} cpus, load {m['load_before'][0]:.1f} -> {m['load_after'][0]:.1f}; "
        f"{s['reads']:,} timed reads per variant and size after {s['warmup']} warm-up reads "
        f"(fallback: {s['fallback_reads']:,}), interleaved in blocks of {s['block']}"
        + ("; QUICK smoke run" if s["quick"] else ""),
        "",
    ]
    header = ["per-read time (ms)"] + [f"{SIZE_LABELS.get(size, size)}" for size in sizes]
    rows: list[list[str]] = [header, [""] + ["median      p95" for _ in sizes]]
    names = [name for name in VARIANT_LABELS if name in warm[sizes[0]]]
    for name in names:
        rows.append(
            [VARIANT_LABELS[name]]
            + [f"{warm[size][name]['median_ms']:6.3f}  {warm[size][name]['p95_ms']:7.3f}" for size in sizes]
        )
    rows.append([""] * (len(sizes) + 1))
    for key, label in (
        ("ours_floor", "ours / floor"),
        ("ours_no_reuse_floor", "ours, answer reuse off / floor"),
        ("stock_ours", "stock / ours"),
        ("fallback_ours", "fallback / ours"),
    ):
        p95 = f"{key}_p95"
        if key not in rat[sizes[0]]:
            continue
        rows.append(
            [label]
            + [
                f"{rat[size][key]:6.2f}x " + (f"{rat[size][p95]:6.2f}x" if p95 in rat[size] else " " * 7)
                for size in sizes
            ]
        )
    if all("kube_requests_per_read" in warm[size]["ours"] for size in sizes):
        rows.append([""] * (len(sizes) + 1))
        for name in names:
            rows.append(
                [f"Kubernetes requests per read, {name}"]
                + [f"{warm[size][name]['kube_requests_per_read']:6.2f}" for size in sizes]
            )
    out += _table(rows)

    cold = result["cold"]
    imports = result["imports"]
    out += ["", f"cold first read in a fresh process (ms, {cold['ours']['n']} processes each)"]
    cold_rows = [["variant", "median", "min", "max", "procs created", "left running"]]
    for name in ("floor", "ours", "stock"):
        c = cold[name]
        cold_rows.append(
            [
                VARIANT_LABELS[name],
                f"{c['median_ms']:.1f}",
                f"{c['min_ms']:.1f}",
                f"{c['max_ms']:.1f}",
                str(c["processes_created"]),
                str(c["processes_left_running"]),
            ]
        )
    cold_rows.append(["stock / ours", f"{rat['cold']['stock_ours']:.1f}x", "", "", "", ""])
    cold_rows.append(["ours / floor", f"{rat['cold']['ours_floor']:.1f}x", "", "", "", ""])
    out += _table(cold_rows)
    out.append(
        f"(not in these numbers: importing Airflow core {imports['airflow_core_s']:.2f} s and the provider "
        f"{imports['provider_s']:.2f} s, which the first read of either variant pays the same)"
    )

    procs = result["warm"]["processes"]
    rss = result["rss"]
    out += ["", "processes during the warm runs (created / still running)"]
    out.append("  " + ",  ".join(f"{name} {p['created']} / {p['left_running']}" for name, p in procs.items()))
    out += [
        "",
        f"RSS of ours over {rss['reads']:,} reads: {rss['rss_before_mb']:.1f} MB -> {rss['rss_after_mb']:.1f} MB "
        f"({rss['growth_mb']:+.2f} MB; trend by tenths: "
        + " ".join(f"{x:+.2f}" for x in rss["trend_mb"])
        + f"); {rss['mean_read_ms']:.3f} ms per read, processes created {rss['processes']['created']}",
    ]
    stream = result.get("stream")
    if stream:
        out += ["", f"one read of a {stream['lines']:,}-line pod, read whole ({stream['line_bytes']} bytes a line)"]
        rows = [["variant", "peak Python heap", "median", "per line"]]
        for name, v in stream["variants"].items():
            rows.append([name, f"{v['peak_kib']:,.0f} KiB", f"{v['median_ms']:.1f} ms", f"{v['us_per_line']:.2f} us"])
        out += _table(rows)
    nodelay = result["warm"].get("client_tcp_nodelay")
    out.append(f"client TCP_NODELAY on the kept-alive connection: {nodelay}")
    out += ["", "targets"]
    out += _table([[t["name"], t["value"], t["status"]] for t in targets(result)])
    out.append(f"(run took {result['elapsed_s']:.0f} s)")
    return "\n".join(out)


def _warm(result: dict[str, Any], size: str, name: str) -> str:
    stats = result["warm"]["per_size"][size].get(name)
    if stats is None:
        return "-"
    return f"{stats['median_ms']:.3f} / {stats['p95_ms']:.3f}"


def _procs(result: dict[str, Any], name: str) -> str:
    tally = result["warm"]["processes"][name]
    return f"{tally['created']} / {tally['left_running']}"


def _requests(result: dict[str, Any], size: str) -> str:
    warm = result["warm"]["per_size"][size]
    if "kube_requests_per_read" not in warm["ours"]:
        return "-"
    return f"{warm['ours']['kube_requests_per_read']:.2f} / {warm['floor']['kube_requests_per_read']:.2f}"


def render_comparison(results: Sequence[dict[str, Any]]) -> str:
    """Side by side: the headline numbers of every cell, in one table."""
    if not results:
        return "no results to compare"
    rows: list[list[str]] = [["metric"] + [r["cell"] for r in results]]
    sizes = list(results[0]["warm"]["per_size"])
    all_targets = [targets(r) for r in results]
    all_ratios = [ratios(r) for r in results]
    for size in sizes:
        size_label = SIZE_LABELS.get(size, size)
        for name, label in VARIANT_LABELS.items():
            rows.append([f"{label}, {size_label}: median / p95 ms"] + [_warm(r, size, name) for r in results])
        rows.append([f"ours/floor, {size_label}"] + [f"{rat[size]['ours_floor']:.2f}x" for rat in all_ratios])
        rows.append(
            [f"ours/floor, answer reuse off, {size_label}"]
            + [f"{rat[size].get('ours_no_reuse_floor', math.nan):.2f}x" for rat in all_ratios]
        )
        rows.append([f"stock/ours, {size_label}"] + [f"{rat[size]['stock_ours']:.2f}x" for rat in all_ratios])
        rows.append(
            [f"Kubernetes requests per read, ours / floor, {size_label}"] + [_requests(r, size) for r in results]
        )
    for name in ("floor", "ours", "stock"):
        rows.append([f"cold first read, {name}: median ms"] + [f"{r['cold'][name]['median_ms']:.1f}" for r in results])
    rows.append(["cold stock/ours"] + [f"{rat['cold']['stock_ours']:.1f}x" for rat in all_ratios])
    rows.append(["cold ours/floor"] + [f"{rat['cold']['ours_floor']:.1f}x" for rat in all_ratios])
    for name in ("ours", "stock", "fallback"):
        rows.append([f"processes created / left running, warm: {name}"] + [_procs(r, name) for r in results])
    rows.append(
        ["RSS growth of ours"] + [f"{r['rss']['growth_mb']:+.2f} MB over {r['rss']['reads']:,}" for r in results]
    )
    by_name = [{t["name"]: t for t in cell} for cell in all_targets]
    for name in dict.fromkeys(t["name"] for cell in all_targets for t in cell):
        rows.append(
            [f"target: {name}"] + [f"{t[name]['value']} {t[name]['status']}" if name in t else "-" for t in by_name]
        )
    return "\n".join(["== side by side", *_table(rows)])


def main(argv: Sequence[str] | None = None) -> int:
    """Print the side-by-side comparison of the result files given."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="benchmarks/results/<cell>.json files")
    args = parser.parse_args(argv)
    results = [json.loads(path.read_text(encoding="utf-8")) for path in args.results if path.exists()]
    print(render_comparison(results))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
