"""
Classification: is a Manager server orphaned, a child of an Airflow process, or something else?

A forked Manager inherits its parent's process title, so an orphan's own command line tells what it
was forked from (``forked from airflow api-server worker``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from airflow_executor_logs.utils.processes import ManagerProcess, find_manager_processes

__all__ = [
    "KIND_AIRFLOW",
    "KIND_ORPHANED",
    "KIND_OTHER",
    "ManagerRecord",
    "airflow_role",
    "classify",
    "scan",
]

KIND_ORPHANED = "orphaned"
KIND_AIRFLOW = "airflow"
KIND_OTHER = "other"

_MP_CHILD_MARKERS = ("multiprocessing.spawn", "multiprocessing.forkserver", "--multiprocessing-fork")
_SUBCOMMAND = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True, kw_only=True)
class ManagerRecord(ManagerProcess):
    """A :class:`ManagerProcess` and what the doctor made of it: its ``kind``, ``origin`` and ``forked_from``."""

    kind: str
    origin: str
    forked_from: str | None = None

    @property
    def orphaned(self) -> bool:
        return self.kind == KIND_ORPHANED


def _words(cmdline: Sequence[str]) -> list[str]:
    # A title set with setproctitle is one argument with spaces; split everything the same way.
    return " ".join(cmdline).split()


def _airflow_subcommand(words: Sequence[str]) -> str | None:
    """``airflow <subcommand>`` when the command runs the ``airflow`` CLI (as script, ``-m`` or title)."""
    for index, word in enumerate(words[:3]):
        if os.path.basename(word) != "airflow":
            continue
        before = words[:index]
        launched = not before or before[-1] == "-m" or os.path.basename(before[0]).startswith("python")
        if not launched:
            return None
        following = words[index + 1] if index + 1 < len(words) else ""
        if _SUBCOMMAND.fullmatch(following):
            return "airflow " + following.replace("_", "-")
        return "airflow"
    return None


def airflow_role(cmdline: Sequence[str], parent_cmdline: Sequence[str] | None = None) -> str | None:
    """
    What Airflow process a command line belongs to (``airflow api-server worker``, ``airflow scheduler``).

    ``parent_cmdline`` identifies ``multiprocessing`` spawn children (uvicorn's API server workers),
    whose own command line does not say what they are. ``None`` for non-Airflow processes.
    """
    words = _words(cmdline)
    text = " ".join(words)
    if not words:
        return None
    if text.startswith("gunicorn: worker") or "airflow api-server worker" in text:
        return "airflow api-server worker"
    if text.startswith("gunicorn: master"):
        return "airflow api-server"
    subcommand = _airflow_subcommand(words)
    if subcommand is not None:
        return subcommand
    if parent_cmdline is not None and any(marker in text for marker in _MP_CHILD_MARKERS):
        parent_role = airflow_role(parent_cmdline)
        if parent_role == "airflow api-server":
            return "airflow api-server worker"
        if parent_role is not None:
            return f"{parent_role} subprocess"
    if "airflow" in text and any(os.path.basename(word) == "uvicorn" for word in words):
        return "airflow api-server"
    return None


def _cmdline_of(pid: int) -> tuple[str, ...] | None:
    try:
        return tuple(psutil.Process(pid).cmdline())
    except psutil.Error:
        return None


def parent_role(ppid: int) -> tuple[str | None, str]:
    """The Airflow role of process ``ppid`` (or ``None``) and a short name for it."""
    try:
        parent = psutil.Process(ppid)
        cmdline = tuple(parent.cmdline())
        name = parent.name()
        grandparent_cmdline = _cmdline_of(parent.ppid())
    except psutil.Error:
        return None, "?"
    return airflow_role(cmdline, grandparent_cmdline), name


_MAIN_PATH = re.compile(r"'main_path': '([^']+)'")


def _forked_from(manager: ManagerProcess) -> str | None:
    """
    What Airflow process ``manager`` was forked from, by its command line.

    Under a forkserver that line is the forkserver's; it still names the main script of the process
    that started the forkserver (``main_path``), e.g. ``airflow``.
    """
    if manager.forkserver is None:
        return airflow_role(manager.cmdline)
    match = _MAIN_PATH.search(" ".join(manager.cmdline))
    role = airflow_role(["python", match.group(1)]) if match else None
    return f"{role} (through a forkserver)" if role else None


def classify(manager: ManagerProcess) -> ManagerRecord:
    """Decide whether ``manager`` is orphaned, a child of an Airflow process, or something else."""
    forked_from = _forked_from(manager)
    via = f" through forkserver {manager.forkserver}" if manager.forkserver is not None else ""
    if manager.orphan_reason is not None:
        kind = KIND_ORPHANED
        origin = f"orphaned ({manager.orphan_reason})" + (f", forked from {forked_from}" if forked_from else "")
    else:
        parent = manager.started_by if manager.started_by is not None else manager.ppid
        role, name = parent_role(parent)
        if role is not None:
            kind, origin = KIND_AIRFLOW, f"child of {role} {parent}{via}"
        else:
            kind, origin = KIND_OTHER, f"child of non-Airflow process {parent} ({name}){via}"
    fields = {field.name: getattr(manager, field.name) for field in dataclasses.fields(ManagerProcess)}
    return ManagerRecord(**fields, kind=kind, origin=origin, forked_from=forked_from)


def scan(tmpdir: str | None = None) -> list[ManagerRecord]:
    """Every Manager server on the host (with ``tmpdir``: whose socket is under it), classified."""
    return [classify(manager) for manager in find_manager_processes(tmpdir)]
