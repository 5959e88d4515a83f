#!/usr/bin/env bash
# Benchmark reading RUNNING task logs on every matrix cell, then compare the cells side by side.
#   bash benchmarks/run.sh            full run (about 2 minutes per cell)
#   bash benchmarks/run.sh --quick    smoke run: few reads, not a measurement
# Other options go to `python -m benchmarks.bench` (see --help there), e.g. --reads 2000.
# BENCH_CELLS="airflow-3.3.2-k8s-10.25.0" limits the cells. Results: benchmarks/results/<cell>.json.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"

results="benchmarks/results"
mkdir -p "$results"
read -r -a cells <<<"${BENCH_CELLS:-${MATRIX_CELLS[*]}}"

status=0
files=()
py=""
for cell in "${cells[@]}"; do
  py="$(ensure_cell "$cell")"
  say "${cell}: benchmark"
  rm -f "${results}/${cell}.json"
  if "$py" -m benchmarks.bench --cell "$cell" --out "${results}/${cell}.json" "$@"; then
    files+=("${results}/${cell}.json")
  else
    status=1
  fi
  echo
done

if [[ ${#files[@]} -gt 0 ]]; then
  "$py" -m benchmarks.report "${files[@]}"
fi
if [[ $status -ne 0 ]]; then
  say "FAILED (see above; each cell's child output is in ${results}/<cell>.log)"
fi
exit $status
