# Shared by scripts/*.sh: a pinned uv, and one virtualenv per matrix cell.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="${REPO_ROOT}/.venvs"
UV_VERSION="0.13.9"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# The matrix: core + cncf-kubernetes provider, each pinned by constraints/<cell>.txt.
# Primary cells run the whole suite: where the bug bites, and the newest stable core and provider.
MATRIX_CELLS=(airflow-3.2.1-k8s-10.18.0 airflow-3.3.2-k8s-10.25.0)
# The other core lines run the compatibility suite (scripts/test.sh says what it holds).
COMPAT_CELLS=(
  airflow-3.0.6-k8s-10.4.3      # 3.0 line; 10.4.3 is the oldest leaking provider that imports on Airflow 3
  airflow-3.1.8-k8s-10.10.0     # 3.1 line, a leaking provider
  airflow-3.4.0b2-k8s-10.25.0   # next core (_get_executor, streaming), streaming provider
  airflow-3.4.0b2-k8s-10.18.0   # next core, leaking provider
)
# Provider parity only: the other releases whose get_task_log / get_streaming_task_log differ.
PARITY_CELLS=(airflow-3.2.1-k8s-10.19.0 airflow-3.2.1-k8s-10.20.0 airflow-3.3.2-k8s-10.24.0)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_uv() {
  if [[ -x "${VENVS}/uv/bin/uv" ]]; then
    UV="${VENVS}/uv/bin/uv"
    return
  fi
  say "installing uv ${UV_VERSION}"
  "$PYTHON" -m venv "${VENVS}/uv"
  "${VENVS}/uv/bin/pip" install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  UV="${VENVS}/uv/bin/uv"
}

# ensure_cell CELL -> prints the cell's python; installs exactly the cell's lock plus this package and its test kit
# (kit/), both editable.
ensure_cell() {
  local cell="$1" venv="${VENVS}/$1" lock="${REPO_ROOT}/constraints/$1.txt"
  ensure_uv
  local stamp="${venv}/.lock-sha"
  local want
  want="$(sha256sum "$lock" "${REPO_ROOT}/pyproject.toml" "${REPO_ROOT}/kit/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    say "installing ${cell} (pinned by constraints/${cell}.txt)"
    [[ -x "${venv}/bin/python" ]] || "$UV" venv --quiet --python "$PYTHON" "$venv"
    "$UV" pip sync --quiet --python "${venv}/bin/python" "$lock"
    "$UV" pip install --quiet --python "${venv}/bin/python" --no-deps -e "$REPO_ROOT" -e "${REPO_ROOT}/kit"
    echo "$want" >"$stamp"
  fi
  echo "${venv}/bin/python"
}

# ensure_postgres: PostgreSQL server binaries for the PostgreSQL tests and benchmarks (Debian's package).
# Without them (and no root/apt-get to install them) those tests skip with the reason.
ensure_postgres() {
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1; then
    return 0
  fi
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing postgresql (apt-get)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; then
      say "could not install postgresql: the PostgreSQL tests will skip"
    fi
  else
    say "no PostgreSQL binaries and no root apt-get: the PostgreSQL tests will skip"
  fi
}

# ensure_chromium: Debian's chromium for the browser e2e test and `demo.sh --ui` (driven by playwright from the
# cell's lock, launched with executable_path: never `playwright install`, which downloads a browser).
# Without it (and no root/apt-get to install it) the browser test skips with the reason.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    return 0
  fi
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium (apt-get)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
      say "could not install chromium: the browser test will skip"
    fi
  else
    say "no chromium and no root apt-get: the browser test will skip (install Debian's chromium package)"
  fi
}
