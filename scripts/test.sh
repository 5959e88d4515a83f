#!/usr/bin/env bash
# The test command: lint, type-check and run the whole suite on every matrix cell.
# Extra arguments go to pytest, e.g. scripts/test.sh -k fallback
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

status=0
lint_paths=(src tests scripts)
[[ -d benchmarks ]] && lint_paths+=(benchmarks)
for cell in "${MATRIX_CELLS[@]}"; do
  py="$(ensure_cell "$cell")"
  bin="$(dirname "$py")"
  if [[ "$cell" == "${MATRIX_CELLS[0]}" ]]; then
    say "ruff"
    "${bin}/ruff" check "${lint_paths[@]}" || status=1
    "${bin}/ruff" format --check "${lint_paths[@]}" || status=1
  fi
  say "${cell}: mypy"
  "${bin}/mypy" || status=1
  say "${cell}: pytest"
  "$py" -m pytest -p no:cacheprovider --durations=10 "$@" || status=1
done

py="$(ensure_cell "$PARITY_CELL")"
say "${PARITY_CELL}: provider parity"
"$py" -m pytest -p no:cacheprovider -m parity "$@" || status=1

if [[ $status -ne 0 ]]; then
  say "FAILED (see above)"
fi
exit $status
