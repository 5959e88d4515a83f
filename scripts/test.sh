#!/usr/bin/env bash
# The test command: lint, type-check and run the suite on every matrix cell (see scripts/lib.sh).
#   primary cells:       the whole suite (unit, integration, real api-servers, load and recycling, PostgreSQL
#                        pressure), the longest api-server runs shared between the two (see below)
#   compatibility cells: unit tests, reads through Airflow on a real sqlite DB (TaskLogReader and the
#                        FastAPI endpoint, with the stock control where the provider leaks; NomadExecutor
#                        through the endpoint and its stock control on the 3.1.8 cell), doctor check on that DB, the
#                        Kubernetes reader against the loopback API, provider parity, and one real
#                        api-server run with one worker-recycle cycle and a tailing read (and its
#                        stock control where the provider leaks)
#   forkserver run:      the short-lived, isolation, fallback chaos and doctor tests with forkserver as the default start method
#   parity cells:        our reader against the provider's own get_task_log / get_streaming_task_log,
#                        AwsEksExecutor's where the amazon provider is locked, and the Elasticsearch and OpenSearch
#                        handlers with remote logging on where their providers are (only those modules are collected)
#   provider's tests:    the cncf-kubernetes provider's own task-log tests from its sdist, stock and with our handler,
#                        on PROVIDER_TESTS_CELL (scripts/provider_tests.sh; the by-design differences are printed)
# Every cell is installed and type-checked first (mypy two cells at a time, while the next cells install); the
# test runs then go one cell at a time, so no test shares the machine with another cell's.
# Extra arguments go to pytest, e.g. scripts/test.sh -k fallback
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

status=0
timings=()
started_all=$SECONDS
lint_paths=(src kit/src tests scripts)
[[ -d benchmarks ]] && lint_paths+=(benchmarks)

# prepare_cells: install every cell; ruff and the import-cycle check once; mypy in each cell but the parity ones, started as soon as the cell
# is installed, two at a time (one core each, a cache per cell), while the next cells install. Their output is
# printed in cell order; fails if ruff or any mypy failed.
prepare_cells() {
  local logs cell failed=0 running=0 typed=("${MATRIX_CELLS[@]}" "${COMPAT_CELLS[@]}")
  logs="$(mktemp -d)"
  for cell in "${typed[@]}" "${PARITY_CELLS[@]}"; do
    if ! ensure_cell "$cell" >/dev/null; then
      failed=1  # run_cell tries again, and stops the script if it fails there too
      continue
    fi
    if [[ "$cell" == "${MATRIX_CELLS[0]}" ]]; then
      say "ruff"
      "${VENVS}/${cell}/bin/ruff" check "${lint_paths[@]}" || failed=1
      "${VENVS}/${cell}/bin/ruff" format --check "${lint_paths[@]}" || failed=1
      say "import cycles"
      "${VENVS}/${cell}/bin/python" scripts/check_cycles.py src kit/src || failed=1
    fi
    [[ " ${typed[*]} " == *" ${cell} "* ]] || continue
    if ((running == 2)); then
      wait -n || failed=1
      running=$((running - 1))
    fi
    "${VENVS}/${cell}/bin/mypy" --cache-dir "${VENVS}/${cell}/.mypy_cache" >"${logs}/${cell}" 2>&1 &
    running=$((running + 1))
  done
  while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
  done
  for cell in "${typed[@]}"; do
    say "${cell}: mypy"
    cat "${logs}/${cell}" >&2
  done
  rm -rf "$logs"
  return $failed
}

run_cell() {  # run_cell CELL KIND PYTEST-ARGS...
  local cell="$1" kind="$2" started=$SECONDS cell_status=0
  shift 2
  local py
  py="$(ensure_cell "$cell")"
  say "${cell}: pytest (${kind})"
  "$py" -m pytest -p no:cacheprovider --durations=5 "$@" || cell_status=1
  timings+=("$(printf '%-32s %-8s %4ds  %s' "$cell" "$kind" $((SECONDS - started)) "$([[ $cell_status -eq 0 ]] && echo ok || echo FAILED)")")
  [[ $cell_status -eq 0 ]] || status=1
}

ensure_postgres  # the PostgreSQL tests of the primary cells (they skip, saying why, without it)
ensure_chromium  # the browser e2e test of the primary cell 3.3.2 (it skips, saying why, without it)
started=$SECONDS
static_status=0
prepare_cells || static_status=1
timings+=("$(printf '%-32s %-8s %4ds  %s' "every cell" "install, ruff, mypy" $((SECONDS - started)) "$([[ $static_status -eq 0 ]] && echo ok || echo FAILED)")")
[[ $static_status -eq 0 ]] || status=1

# The primary cells share the longest api-server runs: the first (the leaking provider) runs the load and 10-cycle
# recycling run, which covers the one-cycle recycle of our handler there; the second runs the PostgreSQL pressure
# run, that one-cycle recycle, the browser test (Chromium on the Logs tab) and the 200 fallback reads on one
# api-server worker. Every other test runs on both.
for cell in "${MATRIX_CELLS[@]}"; do
  if [[ "$cell" == "${MATRIX_CELLS[0]}" ]]; then
    shared=(--ignore tests/e2e/test_postgres_pressure.py --ignore tests/e2e/test_log_view_in_browser.py
      --ignore tests/e2e/test_fallback_under_load.py
      --deselect tests/e2e/test_one_recycle_cycle.py::test_ours_serves_every_worker_across_a_recycle_tails_and_leaks_nothing)
  else
    shared=(--ignore tests/e2e/test_load_and_recycling.py)
  fi
  run_cell "$cell" full "${shared[@]}" "$@"
done
# Python 3.14 makes forkserver the default start method: the short-lived executor, isolation and doctor tests once
# more with it set (the executor doubles use the default start method, as providers do).
export AEL_START_METHOD=forkserver
run_cell "${MATRIX_CELLS[1]}" forkserver tests/unit/executors/test_short_lived.py tests/unit/utils tests/unit/cli/doctor \
  tests/integration/test_fallback_chaos.py "$@"
unset AEL_START_METHOD
for cell in "${COMPAT_CELLS[@]}"; do
  # The 200 fallback reads through a real api-server: the primary cell 3.3.2 runs it, and Python 3.13 here.
  extra=()
  [[ "$cell" == airflow-3.4.0b2-k8s-10.25.0 ]] && extra=(tests/e2e/test_fallback_under_load.py)
  # The loopback API's own tests: the same code on every cell, the primary cells run them (not kube_api/test_task_pods.py:
  # it labels pods as the installed provider does).
  # test_nomad_executor.py runs where the nomad provider imports (the 3.1.8 cell) and skips, saying so, elsewhere;
  # test_tailing_exactly_once.py's property test where hypothesis is locked (3.4.0b2 + 10.25.0), its regressions everywhere.
  run_cell "$cell" compat tests/unit tests/integration/test_read_through_airflow.py tests/integration/test_db_connections.py \
    tests/integration/test_kubernetes_reader.py tests/integration/test_kubernetes_parity.py \
    tests/integration/test_nomad_executor.py tests/integration/test_tailing_exactly_once.py \
    tests/integration/test_doctor_check.py tests/integration/test_fallback_chaos.py \
    tests/e2e/test_one_recycle_cycle.py tests/kit tests/support_tests --ignore tests/kit/test_kube_process.py \
    --ignore-glob 'tests/kit/kube_api/test_[!t]*.py' "${extra[@]}" "$@"
done
started=$SECONDS
provider_status=0
bash scripts/provider_tests.sh "$(ensure_cell "$PROVIDER_TESTS_CELL")" || provider_status=1
timings+=("$(printf '%-32s %-8s %4ds  %s' "$PROVIDER_TESTS_CELL" "provider" $((SECONDS - started)) "$([[ $provider_status -eq 0 ]] && echo ok || echo FAILED)")")
[[ $provider_status -eq 0 ]] || status=1
for cell in "${PARITY_CELLS[@]}"; do
  # test_aws_eks_parity.py runs where the amazon provider has AwsEksExecutor (the 10.24.0 cell) and skips elsewhere;
  # test_remote_logging.py where the elasticsearch and opensearch providers are locked (the 10.24.0 cell), and
  # skips, saying so, elsewhere.
  run_cell "$cell" parity tests/integration/test_kubernetes_parity.py tests/integration/test_aws_eks_parity.py \
    tests/integration/test_remote_logging.py -m 'parity or remote_logging' "$@"
done

say "time per cell"
printf '  %s\n' "${timings[@]}" >&2
printf '  total %ds\n' $((SECONDS - started_all)) >&2
if [[ $status -ne 0 ]]; then
  say "FAILED (see above)"
fi
exit $status
