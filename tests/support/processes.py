"""Process accounting for leak assertions, with psutil."""

from __future__ import annotations

import time

import psutil


def child_pids() -> set[int]:
    """Every live descendant of this process (zombies included)."""
    return {child.pid for child in psutil.Process().children(recursive=True)}


def zombies() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def new_children(before: set[int], settle: float = 3.0) -> set[int]:
    """Descendants that were not in ``before``, after giving exiting ones ``settle`` s to go."""
    give_up = time.monotonic() + settle
    while True:
        extra = child_pids() - before
        if not extra or time.monotonic() >= give_up:
            return extra
        time.sleep(0.05)


def describe(pids: set[int]) -> list[str]:
    out = []
    for pid in sorted(pids):
        try:
            process = psutil.Process(pid)
            out.append(f"{pid} {process.status()} {' '.join(process.cmdline())[:80]}")
        except psutil.NoSuchProcess:
            out.append(f"{pid} gone")
    return out
