"""
A single-threaded helper process that forks the isolated children of a multi-threaded one.

An API server worker runs many threads (AnyIO's, our fetch pool), so it must not fork: the child
would inherit, held forever, every lock another thread held at that instant. Each worker instead
starts one *zygote* (``subprocess``: fork and exec at once, which is safe) the first time it needs
an isolated call. The zygote never starts a thread; for each call it forks a child that runs
:func:`~airflow_executor_logs.utils.isolated_call.run_isolated`, so every guarantee of an isolated
call holds (subreaper, deadline, one child per call).

Why our own helper rather than the stdlib's ``forkserver``: that one is a process-wide singleton that
executors share (a Manager started under it would not be the read's descendant, so nothing could stop
it per read), it is no subreaper, it never exits while the process lives, and it cannot say which
worker it belongs to.

What crosses: the call is pickled (so it must be a module-level function or a ``functools.partial``
of one), with the worker's environment, ``sys.path`` and start method, which the child adopts (a
``forkserver`` default becomes ``fork`` there: the child is single-threaded, see :func:`_receive_call`).

Lifetime: started on first use; exits (stopping whatever it still has running) when its worker exits,
SIGKILL included (its control socket closes and its parent changes), and after ``idle`` seconds
without calls. Its command line ends with :data:`HELPER_MARK`, which the doctor recognises.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from airflow_executor_logs.utils.isolated_call import (
    IsolatedCallFailed,
    await_outcome,
    run_isolated,
    thread_count,
)
from airflow_executor_logs.utils.processes import stop_descendants

T = TypeVar("T")

__all__ = ["HELPER_MARK", "Zygote", "call_in_helper", "helper_pids", "is_helper_cmdline", "main", "stop_helper"]

#: The last argument of the helper's command line.
HELPER_MARK = "airflow-executor-logs-zygote"
_MAIN = "import sys; from airflow_executor_logs.utils.zygote import main; main(sys.argv[1:])"
_LENGTH = struct.Struct("!Q")
#: The helper checks on its worker at least this often (seconds).
_WATCH_INTERVAL = 0.5
#: What the helper answers (instead of forking) once an import has left it with more than one thread.
_THREADED = "ZygoteThreaded"


def is_helper_cmdline(cmdline: Iterable[str]) -> bool:
    """Whether a process's command line is a zygote's."""
    args = list(cmdline)
    return bool(args) and args[-1] == HELPER_MARK


class Zygote:
    """The worker's side of one helper process: starts it when needed, sends it calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._owner = 0
        #: Modules whose import left a helper with threads: never preloaded again.
        self._unsafe: set[str] = set()

    @property
    def pid(self) -> int | None:
        """The live helper's pid, if this process has one."""
        proc = self._proc
        if proc is None or self._owner != os.getpid() or proc.poll() is not None:
            return None
        return proc.pid

    def call(
        self,
        fn: Callable[[], T],
        *,
        deadline: float,
        grace: float = 2.0,
        idle: float = 120.0,
        preload: Iterable[str] = (),
    ) -> T:
        """
        ``fn()`` in a child the helper forks, its answer pickled back; at most ``deadline`` seconds.

        :raises IsolatedCallFailed: ``fn`` raised, its answer could not be sent back, or the helper failed.
        :raises IsolatedCallTimedOut: no answer within ``deadline``.
        """
        give_up_at = time.monotonic() + deadline
        modules = [name for name in dict.fromkeys(preload) if name not in self._unsafe]
        try:
            body = pickle.dumps((dict(os.environ), list(sys.path), _start_method(), pickle.dumps(fn)))
        except Exception as err:
            raise IsolatedCallFailed(f"the call cannot be sent to the helper: {type(err).__name__}: {err}") from None
        request = _LENGTH.pack(len(body)) + body
        for attempt in (1, 2):
            ours, theirs = socket.socketpair()
            try:
                helper = self._send(json.dumps({"preload": modules, "grace": grace}).encode(), theirs.fileno(), idle)
            finally:
                theirs.close()
            with ours:
                ours.settimeout(max(give_up_at - time.monotonic(), 0.001))
                with contextlib.suppress(TimeoutError, OSError):  # the child died or is late: the outcome says which
                    ours.sendall(request)
                try:
                    return await_outcome(ours, give_up_at, grace)  # type: ignore[no-any-return]
                except IsolatedCallFailed as err:
                    if str(err).startswith(_THREADED):
                        self._unsafe.update(modules)
                        self._forget(helper)
                        if attempt == 1:
                            continue
                    elif attempt == 1 and self._exited_without_answering(helper):
                        continue  # it went idle as the call arrived: once more, in a new helper
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, message: bytes, fd: int, idle: float) -> subprocess.Popen[bytes]:
        """Hand ``fd`` (the call's socket) to the helper, starting one if needed; returns that helper."""
        with self._lock:
            for _ in range(2):
                proc, control = self._running(idle)
                try:
                    socket.send_fds(control, [message], [fd])
                    return proc
                except OSError:
                    self._forget_locked(proc)
            raise IsolatedCallFailed("the helper process could not be reached")

    def _running(self, idle: float) -> tuple[subprocess.Popen[bytes], socket.socket]:
        if self.pid is None or self._control is None or self._proc is None:
            self._forget_locked(self._proc)
            self._proc, self._control = _start_helper(idle)
            self._owner = os.getpid()
        return self._proc, self._control

    def _exited_without_answering(self, helper: subprocess.Popen[bytes]) -> bool:
        with contextlib.suppress(subprocess.TimeoutExpired):
            helper.wait(0.5)
        if helper.poll() is None:
            return False
        self._forget(helper)
        return True

    def _forget(self, helper: subprocess.Popen[bytes] | None) -> None:
        with self._lock:
            self._forget_locked(helper)

    def _forget_locked(self, helper: subprocess.Popen[bytes] | None) -> None:
        """Drop ``helper`` (if it is still the current one): it is asked to exit, and reaped."""
        if helper is None or helper is not self._proc:
            return
        if self._control is not None:
            self._control.close()  # the helper sees its socket close and exits
        self._proc, self._control = None, None
        if self._owner == os.getpid():
            with contextlib.suppress(subprocess.TimeoutExpired):
                helper.wait(5.0)
            if helper.poll() is None:
                helper.kill()
                helper.wait()

    def stop(self) -> None:
        """Ask the helper to exit and wait for it (tests; a worker's helper exits with it anyway)."""
        self._forget(self._proc)


_zygote = Zygote()


def call_in_helper(
    fn: Callable[[], T], *, deadline: float, grace: float = 2.0, idle: float = 120.0, preload: Iterable[str] = ()
) -> T:
    """:meth:`Zygote.call` on this process's helper."""
    return _zygote.call(fn, deadline=deadline, grace=grace, idle=idle, preload=preload)


def helper_pids() -> set[int]:
    """The pid of this process's live helper, if any (it is not a leak while this process lives)."""
    pid = _zygote.pid
    return set() if pid is None else {pid}


def stop_helper() -> None:
    """Stop this process's helper, if it runs."""
    _zygote.stop()


def _start_method() -> str | None:
    return multiprocessing.get_start_method(allow_none=True)


def _start_helper(idle: float) -> tuple[subprocess.Popen[bytes], socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _MAIN, str(theirs.fileno()), repr(idle), HELPER_MARK],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, ours


# ----------------------------------------------------------------------------------- the helper's side


def main(argv: list[str]) -> None:
    """The helper: fork one isolated child per call until the worker goes or ``idle`` s pass without one."""
    control = socket.socket(fileno=int(argv[0]))
    idle = float(argv[1])
    from airflow_executor_logs.utils.isolated_call import _PR_SET_CHILD_SUBREAPER, _prctl

    _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # orphans of a killed child come back here, to be stopped
    signal.signal(signal.SIGTERM, _exit_on_signal)
    # A child's exit wakes the loop at once (through this pipe), so it is reaped at once.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    worker = os.getppid()
    children: set[int] = set()
    preloaded: set[str] = set()
    last_call = time.monotonic()
    try:
        while os.getppid() == worker:
            _reap(children)
            idle_now = not children and time.monotonic() - last_call > idle
            # Idle: exit, unless a call is already waiting (one arriving after this check finds the socket
            # closed, and the worker starts a new helper for it).
            ready, _, _ = select.select([control.fileno(), wake_r], [], [], 0 if idle_now else _WATCH_INTERVAL)
            if idle_now and control.fileno() not in ready:
                break
            if wake_r in ready:
                os.read(wake_r, 4096)
            if control.fileno() not in ready:
                continue
            message, fds, _flags, _address = socket.recv_fds(control, 65536, 1)
            if not message:
                break  # the worker closed its end, or exited
            for fd in fds:
                pid = _serve(json.loads(message), fd, preloaded)
                if pid is None:
                    return
                children.add(pid)
            last_call = time.monotonic()  # after the call's preloads: idle counts from when it started running
    except SystemExit:
        pass
    finally:
        control.close()
        stop_descendants(grace=1.0)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _reap(children: set[int]) -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)


def _serve(request: dict[str, Any], fd: int, preloaded: set[str]) -> int | None:
    """Fork the child for one call on ``fd``; ``None`` if this helper may fork no more."""
    for name in request.get("preload", []):
        if name not in preloaded:
            preloaded.add(name)
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    sock = socket.socket(fileno=fd)
    threads = thread_count()
    if threads > 1:
        answer = (False, f"{_THREADED}: importing {request.get('preload')} left the helper with {threads} threads")
        with sock, contextlib.suppress(OSError):
            sock.sendall(struct.pack("!q", -1) + pickle.dumps(answer))
        return None
    pid = os.fork()
    if pid == 0:
        run_isolated(lambda: _receive_call(sock), sock, grace=float(request.get("grace", 2.0)))
    sock.close()
    return pid


def _receive_call(sock: socket.socket) -> Callable[[], Any]:
    """Read the call, and adopt the worker's environment, ``sys.path`` and start method."""
    header = _recv_exactly(sock, _LENGTH.size)
    environ, path, start_method, call = pickle.loads(_recv_exactly(sock, _LENGTH.unpack(header)[0]))
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path
    # forkserver (Python 3.14's default) exists so that a threaded process is never forked. This child is
    # single-threaded, forked from the helper: a Manager forked from it is safe, and costs no forkserver and
    # resource tracker (two new interpreters) per read. An explicit get_context("forkserver") still gets one.
    if start_method == "forkserver":
        start_method = "fork"
    if start_method is not None and multiprocessing.get_start_method(allow_none=True) != start_method:
        multiprocessing.set_start_method(start_method, force=True)
    return pickle.loads(call)  # type: ignore[no-any-return]


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise EOFError("the worker closed the call's socket")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
