"""scripts/lib.sh: each cell's interpreter is found (pyenv's installs first), or the run stops saying which."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bash(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    return subprocess.run(
        ["bash", "-c", f"source {REPO / 'scripts' / 'lib.sh'}; {script}"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fake_python(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_find_python_takes_pyenvs_newest_patch_even_when_pyenv_has_it_inactive(tmp_path: Path) -> None:
    _fake_python(tmp_path / "versions/3.77.1/bin/python3.77", "3.77")
    newest = _fake_python(tmp_path / "versions/3.77.10/bin/python3.77", "3.77")
    _fake_python(tmp_path / "versions/3.78.0/bin/python3.78", "3.78")
    result = _bash("find_python 3.77", PYENV_ROOT=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(newest)


def test_find_python_skips_an_interpreter_that_does_not_run_as_that_version(tmp_path: Path) -> None:
    _fake_python(tmp_path / "versions/3.77.2/bin/python3.77", "3.76")  # e.g. a broken or mislabelled install
    result = _bash("find_python 3.77", PYENV_ROOT=str(tmp_path))
    assert result.returncode == 1
    assert "Python 3.77 is missing" in result.stderr


def test_a_cell_whose_python_is_missing_stops_with_a_clear_message(tmp_path: Path) -> None:
    cell = "airflow-3.2.1-k8s-10.18.0"
    result = _bash(
        f"CELL_PYTHON[{cell}]=3.99; VENVS={tmp_path}; ensure_uv() {{ :; }}; ensure_cell {cell}",
        PYENV_ROOT=str(tmp_path),
    )
    assert result.returncode == 1
    assert "Python 3.99 is missing" in result.stderr
    assert f"cannot install cell {cell}" in result.stderr
    assert not (tmp_path / cell).exists()


def test_every_cell_has_its_lock_and_a_python_version() -> None:
    result = _bash('for c in $(all_cells); do echo "$c $(cell_python "$c")"; done')
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows
    for cell, python in rows:
        assert (REPO / "constraints" / f"{cell}.in").is_file(), cell
        lock = (REPO / "constraints" / f"{cell}.txt").read_text()
        assert lock.splitlines()[1].strip("# ") == "scripts/lock.sh", cell
        major, minor = python.split(".")
        assert (major, minor.isdigit()) == ("3", True), (cell, python)
