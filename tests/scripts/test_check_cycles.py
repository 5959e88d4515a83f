"""scripts/check_cycles.py: every import counts (module level, in a function, type-only), relative ones too."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scripts.check_cycles import find_cycles, import_graph

REPO = Path(__file__).resolve().parents[2]


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("import pkg.b\n", "from pkg import a\n"),
        ("from pkg.b import thing\n", "def f():\n    from pkg.a import other\n"),  # in a function
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import T\n",  # type-only
            "from pkg.a import U\n",
        ),
        ("from .b import thing\n", "from . import a\n"),  # relative
        ("from .sub.c import x\n", "from pkg.a import y\n"),  # through a subpackage
    ],
    ids=["plain", "in a function", "type-only", "relative", "subpackage"],
)
def test_a_cycle_is_found_however_it_is_imported(tmp_path: Path, a: str, b: str) -> None:
    _package(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": a, "pkg/b.py": b, "pkg/sub/__init__.py": ""})
    if "sub.c" in a:
        _package(tmp_path, {"pkg/sub/c.py": "from ..b import z\n"})
    cycles = find_cycles(import_graph([tmp_path]))
    assert len(cycles) == 1
    assert {"pkg.a", "pkg.b"} <= set(cycles[0])


def test_no_cycle_when_imports_go_one_way(tmp_path: Path) -> None:
    _package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import x\n",  # a package importing its own module is no cycle
            "pkg/a.py": "import json\nfrom pkg import b\nfrom pkg.b import y\n",
            "pkg/b.py": "import os\n",
        },
    )
    assert find_cycles(import_graph([tmp_path])) == []


def test_the_command_exits_1_listing_the_cycle_and_0_without(tmp_path: Path) -> None:
    _package(tmp_path / "bad", {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "import pkg.a\n"})
    _package(tmp_path / "good", {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": ""})
    script = str(REPO / "scripts" / "check_cycles.py")
    bad = subprocess.run([sys.executable, script, str(tmp_path / "bad")], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "pkg.a -> pkg.b" in bad.stdout
    assert "pkg.b -> pkg.a" in bad.stdout
    good = subprocess.run([sys.executable, script, str(tmp_path / "good")], capture_output=True, text=True, check=False)
    assert (good.returncode, good.stdout.strip()) == (0, f"no import cycle among 3 modules under {tmp_path / 'good'}")


def test_the_project_has_no_import_cycle() -> None:
    roots = [REPO / "src", REPO / "kit" / "src"]
    assert find_cycles(import_graph(roots)) == []
