#!/usr/bin/env bash
# Viewers benchmark: a real api-server on a private PostgreSQL, many viewers polling RUNNING tasks' logs,
# stock and ours side by side (see benchmarks/README.md, "Viewers").
#   bash benchmarks/viewers.sh                   full run: 60 s per load (about 25 minutes)
#   bash benchmarks/viewers.sh --duration 20     shorter loads
#   bash benchmarks/viewers.sh --only pressure   only the hung / refusing Kubernetes API runs
# VIEWERS_CELL picks the matrix cell (default: the newest primary cell). Results: benchmarks/results/viewers-<cell>.json.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO_ROOT"

cell="${VIEWERS_CELL:-${MATRIX_CELLS[1]}}"
ensure_postgres
py="$(ensure_cell "$cell")"
say "${cell}: viewers benchmark"
"$py" -m benchmarks.viewers --cell "$cell" --out "benchmarks/results/viewers-${cell}.json" "$@"
