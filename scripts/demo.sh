#!/usr/bin/env bash
# The main job: stock Airflow vs airflow-executor-logs on a real api-server, side by side.
# Runs on the cell where the bug bites (core 3.2.1 + cncf-kubernetes 10.18.0); CELL=... picks another.
# --ui: screenshots of the running task's Logs tab (headless chromium), stock and ours, on 3.3.2 + 10.25.0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ui=0  # --ui runs on the cell whose lock pins playwright
for arg in "$@"; do [[ "$arg" == "--ui" ]] && ui=1; done
if ((ui)); then
  cell="${CELL:-airflow-3.3.2-k8s-10.25.0}"
else
  cell="${CELL:-airflow-3.2.1-k8s-10.18.0}"
fi
if [[ ! -f "constraints/${cell}.txt" ]]; then
  say "unknown cell ${cell}; one of: ${MATRIX_CELLS[*]} ${COMPAT_CELLS[*]} ${PARITY_CELLS[*]}"
  exit 2
fi
say "preparing ${cell} (first run installs pinned Airflow: a minute or two)"
py="$(ensure_cell "$cell")"
if ((ui)); then
  ensure_chromium
  say "screenshots of the Logs tab, stock and ours (about three minutes)"
else
  say "running the demo (about three minutes)"
fi
# From the repository root: the demo uses the api-server sandbox of tests/support (no wheel ships it).
exec "$py" -m scripts.demo "$@"
