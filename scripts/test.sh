#!/usr/bin/env bash
# The test command: lint, type-check and run the suite on every matrix cell (see scripts/lib.sh).
#   primary cells:       the whole suite (unit, integration, real api-servers, load and recycling)
#   compatibility cells: unit tests, reads through Airflow on a real sqlite DB (TaskLogReader and the
#                        FastAPI endpoint, with the stock control where the provider leaks), the
#                        Kubernetes reader against the loopback API, provider parity, and one real
#                        api-server run with one worker-recycle cycle and a tailing read (and its
#                        stock control where the provider leaks)
#   parity cells:        our reader against the provider's own get_task_log / get_streaming_task_log
# Extra arguments go to pytest, e.g. scripts/test.sh -k fallback
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

status=0
timings=()
started_all=$SECONDS
lint_paths=(src kit/src tests scripts)
[[ -d benchmarks ]] && lint_paths+=(benchmarks)

run_cell() {  # run_cell CELL KIND PYTEST-ARGS...
  local cell="$1" kind="$2" started=$SECONDS cell_status=0
  shift 2
  local py bin
  py="$(ensure_cell "$cell")"
  bin="$(dirname "$py")"
  if [[ "$cell" == "${MATRIX_CELLS[0]}" ]]; then
    say "ruff"
    "${bin}/ruff" check "${lint_paths[@]}" || cell_status=1
    "${bin}/ruff" format --check "${lint_paths[@]}" || cell_status=1
  fi
  if [[ "$kind" != parity ]]; then
    say "${cell}: mypy"
    "${bin}/mypy" || cell_status=1
  fi
  say "${cell}: pytest (${kind})"
  "$py" -m pytest -p no:cacheprovider --durations=5 "$@" || cell_status=1
  timings+=("$(printf '%-32s %-8s %4ds  %s' "$cell" "$kind" $((SECONDS - started)) "$([[ $cell_status -eq 0 ]] && echo ok || echo FAILED)")")
  [[ $cell_status -eq 0 ]] || status=1
}

ensure_postgres  # the PostgreSQL tests of the primary cells (they skip, saying why, without it)
for cell in "${MATRIX_CELLS[@]}"; do
  run_cell "$cell" full "$@"
done
for cell in "${COMPAT_CELLS[@]}"; do
  # The loopback API's own tests: the same code on every cell, the primary cells run them (not kube_api/test_task_pods.py:
  # it labels pods as the installed provider does).
  run_cell "$cell" compat tests/unit tests/integration/test_read_through_airflow.py tests/integration/test_db_connections.py \
    tests/integration/test_kubernetes_reader.py tests/integration/test_kubernetes_parity.py \
    tests/e2e/test_one_recycle_cycle.py tests/kit tests/support_tests --ignore tests/kit/test_kube_process.py \
    --ignore-glob 'tests/kit/kube_api/test_[!t]*.py' "$@"
done
for cell in "${PARITY_CELLS[@]}"; do
  run_cell "$cell" parity -m parity "$@"
done

say "time per cell"
printf '  %s\n' "${timings[@]}" >&2
printf '  total %ds\n' $((SECONDS - started_all)) >&2
if [[ $status -ne 0 ]]; then
  say "FAILED (see above)"
fi
exit $status
