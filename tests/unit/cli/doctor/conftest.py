"""The ``lab`` fixture: a private TMPDIR for real Manager servers, everything in it stopped by pid afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.cli.doctor.lab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    # Short path: unix socket paths are limited to 107 bytes.
    lab = Lab(Path(tempfile.mkdtemp(prefix="ael-doc-", dir="/tmp")))
    try:
        yield lab
    finally:
        lab.cleanup()
