#!/usr/bin/env bash
# Re-resolve the lock of one cell, several, or (with no argument) every cell: constraints/<cell>.in ->
# constraints/<cell>.txt, with the pinned uv, for the cell's interpreter (scripts/lib.sh cell_python), as of
# EXCLUDE_NEWER (scripts/lib.sh). Then scripts/test.sh (ensure_cell) installs the new lock.
#   scripts/lock.sh                               # every cell
#   scripts/lock.sh airflow-3.1.8-k8s-10.10.0     # one cell
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "${REPO_ROOT}/constraints"
ensure_uv

cells=("$@")
((${#cells[@]})) || mapfile -t cells < <(all_cells)
for cell in "${cells[@]}"; do
  [[ -f "${cell}.in" ]] || { say "no constraints/${cell}.in"; exit 1; }
  say "locking ${cell} for Python $(cell_python "$cell") as of ${EXCLUDE_NEWER}"
  "$UV" pip compile --quiet --no-config --python-version "$(cell_python "$cell")" \
    --exclude-newer "$EXCLUDE_NEWER" --custom-compile-command "scripts/lock.sh" --upgrade \
    --output-file "${cell}.txt" "${cell}.in"
done
