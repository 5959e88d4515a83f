#!/usr/bin/env bash
# The cncf-kubernetes provider's own task-log tests, from its sdist, run twice on PROVIDER_TESTS_CELL (scripts/lib.sh):
# stock, then with our handler (tests/peer/plugin.py), each on a fresh sqlite DB; tests/peer/compare.py prints both
# counts and the tests that fail only with ours by design, and fails if any other test differs.
# Usage: scripts/provider_tests.sh [PYTHON]  (PYTHON: the cell's interpreter, when the caller has installed the cell)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

py="${1:-}"
[[ -n "$py" ]] || py="$(ensure_cell "$PROVIDER_TESTS_CELL")"
provider="$(ensure_provider_sdist)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
executor_tests="tests/unit/cncf/kubernetes/executors/test_kubernetes_executor.py"
tests=(
  tests/unit/cncf/kubernetes/log_handlers/test_log_handlers.py
  "${executor_tests}::TestKubernetesExecutor::test_get_task_log"
  "${executor_tests}::TestKubernetesExecutor::test_get_streaming_task_log"
  "${executor_tests}::TestKubernetesExecutor::test_get_task_log_does_not_create_manager_process"
  "${executor_tests}::TestClientFactoryCallSites::test_get_streaming_task_log_uses_executor_client"
  "${executor_tests}::TestKubernetesExecutorUuid::test_get_streaming_task_log_selects_pod_by_attempt_uuid_label"
)
unset_airflow=()
while IFS= read -r name; do unset_airflow+=(-u "$name"); done < <(compgen -e | grep '^AIRFLOW__' || true)

status=0
for mode in stock ours; do
  home="${work}/${mode}"
  mkdir -p "$home"
  logging_config=()
  [[ "$mode" == ours ]] && logging_config=(AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS=airflow_executor_logs.logging_config.LOGGING_CONFIG)
  say "${PROVIDER_TESTS_CELL}: the provider's task-log tests, ${mode}"
  (cd "$provider" && env "${unset_airflow[@]}" AIRFLOW_HOME="$home" \
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///${home}/airflow.db" AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__UNIT_TEST_MODE=True AIRFLOW__CORE__EXECUTOR=KubernetesExecutor "${logging_config[@]}" \
    AEL_PEER_HANDLER="$mode" AEL_PEER_REPORT="${work}/${mode}.json" \
    PYTHONPATH="${REPO_ROOT}/src:${REPO_ROOT}/kit/src:${REPO_ROOT}:${REPO_ROOT}/tests/peer" \
    "$py" -m pytest -c /dev/null --rootdir . -p no:cacheprovider -p tests.peer.plugin -q --timeout 300 \
    "${tests[@]}" >"${work}/${mode}.log" 2>&1) || true  # the outcomes are judged by compare.py
  printf '  pytest (%s): %s\n' "$mode" "$(tail -n 1 "${work}/${mode}.log")" >&2
  if [[ ! -s "${work}/${mode}.json" ]]; then
    cat "${work}/${mode}.log" >&2
    say "the ${mode} run wrote no report"
    exit 1
  fi
done
"$py" tests/peer/compare.py "${work}/stock.json" "${work}/ours.json" || status=1
exit $status
