"""Both distributions' wheels and sdists pass ``twine check --strict``: the metadata a PyPI user reads renders.

twine is in the first primary cell's lock (the cell the built wheels are tested on); elsewhere this skips.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.package.test_fresh_virtualenv import REPO, UV, _first_primary_cell

CLASSIFIERS = (
    "Framework :: Apache Airflow",
    *(f"Programming Language :: Python :: 3.{minor}" for minor in range(10, 14)),
)


@pytest.mark.slow
def test_wheels_and_sdists_pass_twine_check(tmp_path: Path) -> None:
    cell, primary = Path(sys.prefix).name, _first_primary_cell()
    if cell != primary:
        pytest.skip(f"twine is in the lock of {primary} only (this is {cell})")
    if not UV.exists():
        pytest.skip(f"no uv at {UV} (scripts/lib.sh installs it)")
    dist = tmp_path / "dist"
    for project in (REPO, REPO / "kit"):
        built = subprocess.run(
            [str(UV), "build", "--quiet", "--out-dir", str(dist), str(project)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert built.returncode == 0, built.stderr
    files = sorted(dist.glob("*.whl")) + sorted(dist.glob("*.tar.gz"))
    assert [f.name for f in files] == [
        "airflow_executor_logs-0.1.0-py3-none-any.whl",
        "airflow_executor_logs_testing-0.1.0-py3-none-any.whl",
        "airflow_executor_logs-0.1.0.tar.gz",
        "airflow_executor_logs_testing-0.1.0.tar.gz",
    ]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 4, checked.stdout


@pytest.mark.parametrize("project", ["pyproject.toml", "kit/pyproject.toml"])
def test_both_pyprojects_declare_what_pypi_shows(project: str) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    metadata = tomllib.loads((REPO / project).read_text())["project"]
    assert set(CLASSIFIERS) <= set(metadata["classifiers"])
    assert metadata["keywords"]
    assert metadata["urls"]
