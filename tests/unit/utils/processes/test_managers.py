"""Finding Manager servers: the processes that own a *listening* ``pymp-*/listener-*`` unix socket."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from airflow_executor_logs.utils.processes import (
    ManagerProcess,
    find_manager_processes,
    managers,
    orphan_reason,
    owns_socket,
)
from airflow_executor_logs.utils.processes.managers import _is_manager_socket_path


@pytest.fixture
def tmpdir_() -> Iterator[Path]:
    """A short private directory: unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ael-mgr-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _bound(path: Path, listening: bool) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    if listening:
        sock.listen()
    return sock


def _record(**overrides: object) -> ManagerProcess:
    fields: dict[str, object] = {
        "pid": 10,
        "ppid": 1,
        "create_time": 1000.0,
        "rss": 300,
        "uss": 200,
        "cmdline": ("python",),
        "socket_path": "/tmp/pymp-a/listener-b",
        "orphan_reason": "ppid 1",
    }
    return ManagerProcess(**{**fields, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "tmpdirs", "expected"),
    [
        ("/tmp/pymp-abc/listener-123", None, True),
        ("/tmp/pymp-abc/other-123", None, False),
        ("/tmp/abc/listener-123", None, False),
        ("@/tmp/pymp-abc/listener-123", None, False),  # abstract namespace
        ("", None, False),
        ("/tmp/x/pymp-abc/listener-123", ("/tmp/x",), True),
        ("/tmp/x/deeper/pymp-abc/listener-123", ("/tmp/x",), True),  # any depth below
        ("/tmp/xy/pymp-abc/listener-123", ("/tmp/x",), False),  # a sibling sharing the prefix
        ("/tmp/pymp-abc/listener-123", ("/tmp/x",), False),
    ],
)
def test_manager_socket_path(path: str, tmpdirs: tuple[str, ...] | None, expected: bool) -> None:
    assert _is_manager_socket_path(path, tmpdirs) is expected


def test_a_listening_socket_makes_a_manager_and_a_bound_one_does_not(tmpdir_: Path) -> None:
    socket_path = tmpdir_ / "pymp-test" / "listener-1"
    with _bound(socket_path, listening=False) as sock:
        assert find_manager_processes(str(tmpdir_)) == []  # bound, not listening: a client's, not a server's
        sock.listen()
        (found,) = find_manager_processes(str(tmpdir_))
    me = psutil.Process()
    assert (found.pid, found.ppid, found.create_time, found.socket_path, found.cmdline) == (
        me.pid,
        me.ppid(),
        me.create_time(),
        str(socket_path),
        tuple(me.cmdline()),
    )
    assert found.orphan_reason == orphan_reason(me.ppid(), me.create_time())
    assert found.rss > 0
    assert found.uss is None or found.uss > 0


def test_tmpdir_matches_however_it_is_spelled(tmpdir_: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link = tmpdir_.with_name(tmpdir_.name + "-link")
    link.symlink_to(tmpdir_)
    try:
        with _bound(tmpdir_ / "real" / "pymp-test" / "listener-1", listening=True):
            monkeypatch.chdir(tmpdir_.parent)
            for spelling in (str(tmpdir_), str(link), tmpdir_.name, str(tmpdir_) + "/real/", str(tmpdir_) + "/./"):
                assert [m.pid for m in find_manager_processes(spelling)] == [os.getpid()], spelling
            assert find_manager_processes(str(tmpdir_ / "elsewhere")) == []
    finally:
        link.unlink()


def test_a_socket_not_named_like_a_managers_is_ignored(tmpdir_: Path) -> None:
    with _bound(tmpdir_ / "pymp-test" / "server-1", listening=True), _bound(tmpdir_ / "listener-1", listening=True):
        assert find_manager_processes(str(tmpdir_)) == []


def test_owns_socket(tmpdir_: Path) -> None:
    socket_path = tmpdir_ / "pymp-test" / "listener-1"
    me = psutil.Process()
    with _bound(socket_path, listening=True):
        assert owns_socket(me, str(socket_path))
        assert not owns_socket(me, str(socket_path) + "-other")
    assert not owns_socket(me, str(socket_path))  # closed


def test_memory_is_uss_or_else_rss() -> None:
    assert _record(rss=300, uss=200).memory == 200
    assert _record(rss=300, uss=None).memory == 300


def test_orphaned_follows_the_reason() -> None:
    assert _record(orphan_reason="ppid 1").orphaned
    assert not _record(orphan_reason=None).orphaned


def test_age_is_seconds_since_creation_never_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(managers, "time", SimpleNamespace(time=lambda: 1030.5))
    assert _record(create_time=1000.0).age == 30.5
    assert _record(create_time=1090.0).age == 0.0  # a clock step back: not negative
