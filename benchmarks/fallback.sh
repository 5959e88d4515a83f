#!/usr/bin/env bash
# Short-lived executor (fallback) benchmarks of issue 20, in one run (see benchmarks/README.md, "Fallback reads"):
#   fallback reads under fork / spawn / forkserver on the 3.3.2 (Python 3.12) and 3.4.0b2 (Python 3.13) cells;
#   NomadExecutor on a real api-server on the 3.1.8 cell: sequential reads and 10 viewers, stock and ours.
#   bash benchmarks/fallback.sh                  full run (about 15 minutes on 2 cores)
#   bash benchmarks/fallback.sh --quick          smoke run: few reads, 10 s of viewers (not a measurement)
# Results: benchmarks/results/fallback-<cell>.json and nomad-<cell>.json; the tables are printed at the end.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"

results="benchmarks/results"
mkdir -p "$results"
method_args=() nomad_args=()
if [[ "${1:-}" == "--quick" ]]; then
  method_args=(--reads 5 --warmup 1)
  nomad_args=(--reads 5 --duration 10)
fi
method_cells=(airflow-3.3.2-k8s-10.25.0 airflow-3.4.0b2-k8s-10.25.0)
nomad_cell=airflow-3.1.8-k8s-10.10.0
files=()
py=""
for cell in "${method_cells[@]}"; do
  py="$(ensure_cell "$cell")"
  say "${cell}: fallback reads under each start method"
  "$py" -m benchmarks.fallback start-methods --cell "$cell" --out "${results}/fallback-${cell}.json" \
    "${method_args[@]}" >"${results}/fallback-${cell}.log" 2>&1 || { say "failed: see ${results}/fallback-${cell}.log"; exit 1; }
  files+=("${results}/fallback-${cell}.json")
done
py="$(ensure_cell "$nomad_cell")"
say "${nomad_cell}: NomadExecutor on a real api-server"
"$py" -m benchmarks.fallback nomad --cell "$nomad_cell" --out "${results}/nomad-${nomad_cell}.json" "${nomad_args[@]}"
files+=("${results}/nomad-${nomad_cell}.json")
echo
git log -1 --format='commit measured: %h %s' | cut -c1-120
"$py" -m benchmarks.fallback report "${files[@]}"
