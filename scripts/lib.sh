# Shared by scripts/*.sh: a pinned uv, and one virtualenv per matrix cell.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="${REPO_ROOT}/.venvs"
UV_VERSION="0.13.9"
PYTHON="${PYTHON:-python3.11}"  # only runs the pip that installs uv
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
# Every lock is resolved as of this instant (scripts/lock.sh): the same release set whenever it is re-run.
EXCLUDE_NEWER="2026-10-26T00:00:00Z"

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

# Each cell's interpreter (major.minor); a cell not named here runs on 3.11. Its lock is resolved for it.
declare -A CELL_PYTHON=(
  [airflow-3.3.2-k8s-10.25.0]=3.12    # the official Airflow 3 images' Python
  [airflow-3.3.2-k8s-10.24.0]=3.12
  [airflow-3.4.0b2-k8s-10.25.0]=3.13
  [airflow-3.0.6-k8s-10.4.3]=3.10     # the oldest Python core 3.0 supports
)

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

all_cells() { printf '%s\n' "${MATRIX_CELLS[@]}" "${COMPAT_CELLS[@]}" "${PARITY_CELLS[@]}"; }

# cell_python CELL -> the cell's Python version, major.minor.
cell_python() { echo "${CELL_PYTHON[$1]:-3.11}"; }

# find_python X.Y -> the path of a working CPython X.Y: pyenv's newest X.Y.* (whether or not pyenv has it active),
# else pythonX.Y on PATH. Fails, saying how to install one, when there is none.
find_python() {
  local want="$1" candidate
  local pyenv_root="${PYENV_ROOT:-${HOME}/.pyenv}"
  local candidates=()
  # pyenv's shims answer only for the active versions, so its own installs are looked at first, newest patch first.
  while IFS= read -r candidate; do
    candidates+=("$candidate")
  done < <(compgen -G "${pyenv_root}/versions/${want}.*/bin/python${want}" | sort -rV)
  candidate="$(command -v "python${want}" 2>/dev/null)" && candidates+=("$candidate")
  for candidate in "${candidates[@]}"; do
    if [[ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "$want" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  say "Python ${want} is missing: looked in ${pyenv_root}/versions/${want}.* and for python${want} on PATH." \
    "Install it (e.g. 'pyenv install ${want}') and run again."
  return 1
}

# ensure_cell CELL -> prints the cell's python; installs exactly the cell's lock plus this package and its test kit
# (kit/), both editable, into a virtualenv on the cell's interpreter (cell_python). A virtualenv on another
# interpreter is deleted and created anew.
ensure_cell() {
  local cell="$1" venv="${VENVS}/$1" lock="${REPO_ROOT}/constraints/$1.txt"
  ensure_uv
  [[ -f "$lock" ]] || { say "no lock for cell ${cell}: constraints/${cell}.txt"; return 1; }
  local base interpreter
  base="$(find_python "$(cell_python "$cell")")" || { say "cannot install cell ${cell}"; return 1; }
  interpreter="$("$base" -c 'import sys; print(sys.version.split()[0], sys.base_prefix)')"
  local stamp="${venv}/.lock-sha" have_interpreter="${venv}/.interpreter"
  if [[ -e "$venv" && (! -x "${venv}/bin/python" || "$(cat "$have_interpreter" 2>/dev/null)" != "$interpreter") ]]; then
    say "${cell}: the virtualenv is not on Python ${interpreter}: creating it anew"
    rm -rf "$venv"
  fi
  local want
  want="$( (sha256sum "$lock" "${REPO_ROOT}/pyproject.toml" "${REPO_ROOT}/kit/pyproject.toml"; echo "$interpreter") \
    | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    say "installing ${cell} on Python ${interpreter%% *} (pinned by constraints/${cell}.txt)"
    if [[ ! -x "${venv}/bin/python" ]]; then
      UV_PYTHON_DOWNLOADS=never "$UV" venv --quiet --python "$base" "$venv"
      echo "$interpreter" >"$have_interpreter"
    fi
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

# The cncf-kubernetes provider's own task-log tests (scripts/provider_tests.sh) run on this cell, from the
# provider's sdist: the version is the cell's lock's, the sdist is checked against this sha256.
PROVIDER_TESTS_CELL=airflow-3.3.2-k8s-10.25.0
PROVIDER_TESTS_SDIST_SHA256=134809a37537cedf05cd6d60c51b64cd1df430c29e289786214d33307b27accf

# ensure_provider_sdist -> prints the directory of the provider's sdist, unpacked, for PROVIDER_TESTS_CELL; downloads
# it (pip, from PyPI) into .venvs/provider-tests/ once, and checks its sha256 every time.
ensure_provider_sdist() {
  local cell="$PROVIDER_TESTS_CELL" version dir sdist
  version="$(sed -n 's/^apache-airflow-providers-cncf-kubernetes==\([^ ]*\).*/\1/p' "${REPO_ROOT}/constraints/${cell}.txt")"
  [[ -n "$version" ]] || { say "no cncf-kubernetes provider pinned in constraints/${cell}.txt"; return 1; }
  dir="${VENVS}/provider-tests/${version}"
  sdist="${dir}/apache_airflow_providers_cncf_kubernetes-${version}.tar.gz"
  ensure_uv
  if [[ ! -f "$sdist" ]]; then
    say "downloading the sdist of apache-airflow-providers-cncf-kubernetes ${version} (its tests)"
    mkdir -p "$dir"
    "${VENVS}/uv/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
      --dest "$dir" "apache-airflow-providers-cncf-kubernetes==${version}" >&2 || return 1
  fi
  if ! echo "${PROVIDER_TESTS_SDIST_SHA256}  ${sdist}" | sha256sum --check --status; then
    say "${sdist}: sha256 is not PROVIDER_TESTS_SDIST_SHA256 (scripts/lib.sh); a new provider pin needs a new sha256"
    rm -f "$sdist"
    return 1
  fi
  if [[ ! -d "${dir}/src/tests" ]]; then
    rm -rf "${dir}/src"
    mkdir -p "${dir}/src"
    tar -xzf "$sdist" -C "${dir}/src" --strip-components=1
  fi
  echo "${dir}/src"
}
