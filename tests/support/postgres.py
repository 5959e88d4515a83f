"""
A private PostgreSQL cluster for tests and benchmarks: ``initdb`` and ``pg_ctl`` on 127.0.0.1 only.

The data directory lives in a fresh temp directory owned by the ``postgres`` user (the server refuses
to run as root, so when we are root every command runs through ``runuser -u postgres --``). Unix
sockets are switched off, so nothing lands in shared directories. :class:`PostgresCluster` always stops
the server (``pg_ctl stop -m fast``, then by PID) and removes the directory.

Without PostgreSQL binaries (``scripts/lib.sh ensure_postgres`` installs Debian's ``postgresql``) or
without the ``psycopg2`` driver, :func:`missing_reason` says why, for a clear skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from airflow_executor_logs_testing.lifecycle import Lifecycle
from tests.support.process_control import stop_process_tree

HOST = "127.0.0.1"
SERVER_USER = "postgres"
DATABASE = "airflow"
#: Settings for a throw-away cluster: durability off, room for two api-servers' pools.
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why."""


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: ``$AEL_POSTGRES_BIN``, Debian's newest, or ``PATH``."""
    candidates = [os.environ.get("AEL_POSTGRES_BIN", "")]
    candidates += sorted((str(p.parent) for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")), reverse=True)
    found = shutil.which("initdb")
    candidates.append(str(Path(found).parent) if found else "")
    for candidate in filter(None, candidates):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    return None


def missing_reason() -> str | None:
    """Why a :class:`PostgresCluster` cannot run here, or ``None`` when it can."""
    if find_bin_dir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found: run `source scripts/lib.sh; ensure_postgres`"
    if importlib.util.find_spec("psycopg2") is None:
        return "the psycopg2 driver is not installed in this environment (primary cells pin psycopg2-binary)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    return None


class PostgresCluster(Lifecycle):
    """A running private PostgreSQL server with one database; use it as a context manager."""

    def __init__(self, *, base_dir: str | os.PathLike[str] | None = None, start_timeout: float = 60.0) -> None:
        self.base_dir = base_dir
        self.start_timeout = start_timeout
        self.port = free_port()
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's PID (the child of ``runuser`` when we are root)."""
        if self.proc is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    @property
    def url(self) -> str:
        """``[database] sql_alchemy_conn`` for the cluster's database."""
        return f"postgresql+psycopg2://{SERVER_USER}@{HOST}:{self.port}/{DATABASE}"

    @property
    def data_dir(self) -> Path:
        return self._root() / "data"

    @property
    def log_path(self) -> Path:
        return self._root() / "server.log"

    def start(self) -> PostgresCluster:
        """``initdb``, start the server on 127.0.0.1:``port``, create the database."""
        reason = missing_reason()
        if reason is not None:
            raise PostgresUnavailable(reason)
        self.root = Path(tempfile.mkdtemp(prefix="ael-pg-", dir=self.base_dir)).resolve()
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        command = [str(self._bin("postgres")), "-D", str(self.data_dir), "-p", str(self.port)]
        for name, value in SERVER_SETTINGS.items():
            command += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:  # the server runs in the foreground, our grandchild: never orphaned
            self.proc = subprocess.Popen(
                self._as_server_user(command),
                cwd=self.root,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()
        self._run("createdb", "-h", HOST, "-p", str(self.port), "-U", SERVER_USER, DATABASE)
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; then stop the postmaster's tree by PID; remove the directory."""
        if self.root is None:
            return
        try:
            if self.data_dir.is_dir():  # pg_ctl fails on a server still starting: its tree is stopped below
                with contextlib.suppress(subprocess.SubprocessError, OSError, PostgresUnavailable):
                    self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "20", timeout=30)
        finally:
            if self.proc is not None:
                stop_process_tree(self.proc, grace=5.0)  # reaps runuser, which reaps the server
                self.proc = None
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # -- internals -------------------------------------------------------------------------------
    def _root(self) -> Path:
        if self.root is None:
            raise PostgresUnavailable("cluster not started")
        return self.root

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise PostgresUnavailable(f"postgres exited with {self.proc.returncode}:\n{self.log_tail()}")
            probe = subprocess.run(
                [str(self._bin("pg_isready")), "-q", "-h", HOST, "-p", str(self.port), "-t", "2"],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"postgres not ready in {self.start_timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)

    @staticmethod
    def _bin(tool: str) -> Path:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable(str(missing_reason()))
        return bin_dir / tool

    @staticmethod
    def _as_server_user(cmd: list[str]) -> list[str]:
        return ["runuser", "-u", SERVER_USER, "--", *cmd] if os.geteuid() == 0 else cmd

    @staticmethod
    def _env() -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}

    def _run(self, tool: str, *args: str, timeout: float | None = None) -> str:
        done = subprocess.run(
            self._as_server_user([str(self._bin(tool)), *args]),
            cwd=self._root(),
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout or self.start_timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}\n{self.log_tail()}"
            )
        return done.stdout
