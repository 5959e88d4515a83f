"""
Run a function in a child process that leaves no process behind.

The child makes itself a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``), so every process started
under it stays its descendant, even one whose parent exits (a double fork, ``setsid``): none can be
reparented to PID 1 and escape. When the function returns or raises, the child stops the stdlib's
helpers it started (forkserver, resource tracker), then all its descendants, and sends the outcome
back. If the deadline passes first, the caller stops the child's descendants, then the child. Each
call has its own child, so concurrent calls never touch each other's processes.

Two ways to get that child:

* :func:`call_in_child` forks the calling process. Only a single-threaded process may do that: a
  child forked from a threaded one inherits, held forever, every lock another thread held at the
  fork (the import lock, a logging handler's, a connection pool's). It refuses otherwise.
* :mod:`airflow_executor_logs.utils.zygote` forks the child from a single-threaded helper process
  instead; that is what the API server, which is multi-threaded, uses.

Both speak one protocol over one socket: the child writes its pid and start time, then its pickled
outcome. The caller stops the child only after checking that pid still names that process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from airflow_executor_logs.utils.processes import stop_descendants, stop_tree

T = TypeVar("T")

__all__ = [
    "HEADER",
    "IsolatedCallFailed",
    "IsolatedCallNotStarted",
    "IsolatedCallTimedOut",
    "MultiThreadedForkRefused",
    "await_outcome",
    "call_in_child",
    "run_isolated",
    "thread_count",
]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
#: What a child says first: its pid and its start time (``psutil``'s ``create_time``); a pid of -1: no child.
HEADER = struct.Struct("!qd")
#: Signals a server installs Python handlers for; the child must die of them, not run the server's.
_RESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_fork_lock = threading.Lock()
#: The pid of the isolated child this process is, once it is one (its SIGTERM handler is for it alone).
_isolated: list[int] = []


class IsolatedCallFailed(Exception):
    """The function raised in the child; ``str()`` is ``"ExceptionType: message"``."""


class IsolatedCallNotStarted(IsolatedCallFailed):
    """The call's socket closed before any child said who it is: the call never ran."""


class IsolatedCallTimedOut(TimeoutError):
    """The child did not answer by the deadline; it and its descendants were stopped."""

    def __init__(self, *args: object, started: bool = True) -> None:
        super().__init__(*args)
        #: Whether a child had said who it is (``False``: the call never reached one).
        self.started = started


class ParentExited(BaseException):
    """Raised in a child when the process that forked it dies (its parent-death signal)."""


class MultiThreadedForkRefused(RuntimeError):
    """:func:`call_in_child` was asked to fork a process that runs more than one thread."""


def thread_count() -> int:
    """This process's OS threads (not only Python's: a C library's count too)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def call_in_child(fn: Callable[[], T], *, deadline: float, grace: float = 2.0) -> T:
    """
    ``fn()`` in a child forked from this process, its answer pickled back; at most ``deadline`` seconds.

    :raises MultiThreadedForkRefused: this process runs more than one thread (use the zygote).
    :raises IsolatedCallFailed: ``fn`` raised (or its answer could not be sent back).
    :raises IsolatedCallTimedOut: no answer within ``deadline``.
    """
    with _fork_lock:
        threads = thread_count()
        if threads > 1:
            raise MultiThreadedForkRefused(f"this process runs {threads} threads; forking it could deadlock the child")
        ours, theirs = socket.socketpair()
        parent = os.getpid()
        try:
            pid = os.fork()
        except BaseException:
            ours.close()
            theirs.close()
            raise
        if pid == 0:  # the child: never returns
            ours.close()
            run_isolated(lambda: fn, theirs, grace, parent=parent)
        theirs.close()
    with ours:
        return await_outcome(ours, time.monotonic() + deadline, grace, reap=True)


def await_outcome(sock: socket.socket, give_up_at: float, grace: float, *, reap: bool = False) -> Any:
    """
    The outcome a child of :func:`run_isolated` sends on ``sock``, by ``give_up_at`` (``time.monotonic()``).

    Past it, the child and its descendants are stopped. ``reap``: the child is ours to wait for.
    """
    header = _read_until(sock, give_up_at, HEADER.size)
    pid, started = HEADER.unpack(header) if header is not None and len(header) == HEADER.size else (None, 0.0)
    payload = _read_until(sock, give_up_at) if pid is not None else None
    if pid is not None and pid > 0:  # a negative pid: the answer came from no child (a refusal)
        if payload is None or not _exited(pid, grace, reap):
            _stop_child(pid, started, grace, reap)
        if reap:
            _reap(pid)
    if payload is None:
        if header is not None and pid is None:  # the socket closed before a child said who it is
            raise IsolatedCallNotStarted("the child process died without answering")
        raise IsolatedCallTimedOut(give_up_at, started=pid is not None)
    try:
        ok, value = pickle.loads(payload)
    except Exception:
        raise IsolatedCallFailed("the child process died without answering") from None
    if not ok:
        raise IsolatedCallFailed(value)
    return value


def _read_until(sock: socket.socket, give_up_at: float, size: int | None = None) -> bytes | None:
    """``size`` bytes from ``sock`` (all of it until its end when ``None``); ``None`` if they are late."""
    chunks: list[bytes] = []
    got = 0
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while size is None or got < size:
            left = give_up_at - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            try:
                chunk = sock.recv(65536 if size is None else size - got)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    return b"".join(chunks)


def _exited(pid: int, timeout: float, ours: bool) -> bool:
    """Whether ``pid`` exits within ``timeout`` (reaped if ``ours``, else a zombie counts as exited)."""
    give_up_at = time.monotonic() + timeout
    while True:
        if ours:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return True
            if done:
                return True
        elif _gone(pid):
            return True
        if time.monotonic() >= give_up_at:
            return False
        time.sleep(0.005)


def _stop_child(pid: int, started: float, grace: float, ours: bool) -> None:
    """
    Stop the child ``pid`` and its tree, if that pid still names the process that started at ``started``.

    Its parent (``ours``) may name it by pid alone: the pid cannot be reused before the parent reaps it.
    """
    import psutil

    try:
        proc = psutil.Process(pid)
        if not ours and abs(proc.create_time() - started) > 0.01:
            return  # gone and reaped by its parent; the pid names another process now
    except psutil.Error:
        return
    stop_tree(proc, grace)


def _gone(pid: int) -> bool:
    from airflow_executor_logs.utils.processes import is_gone

    return is_gone(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def run_isolated(
    load: Callable[[], Callable[[], Any]], sock: socket.socket, grace: float, *, parent: int | None = None
) -> NoReturn:
    """
    The child's side: say who it is, run ``load()()`` as a subreaper, stop what it started, answer, exit.

    ``load`` returns the function to run; it may read it from ``sock`` first (the zygote's children do).
    ``parent``: the pid of the process that forked it. If that process dies, the child gets SIGTERM
    (``PR_SET_PDEATHSIG``), stops everything it started and answers that its parent is gone.
    """
    try:
        for number in _RESET_SIGNALS:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(number, signal.SIG_DFL)
        _isolated.append(os.getpid())
        signal.signal(signal.SIGTERM, _parent_gone)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if parent is not None and os.getppid() != parent:
            raise ParentExited  # it died before the line above: no signal will come
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        sock.sendall(HEADER.pack(os.getpid(), _start_time()))
        try:
            outcome: tuple[bool, Any] = (True, load()())
        except BaseException as err:
            outcome = (False, f"{type(err).__name__}: {err}")
        finally:
            _stop_stdlib_helpers()
            stop_descendants(grace)
        try:
            payload = pickle.dumps(outcome)
        except Exception as err:
            payload = pickle.dumps((False, f"its answer could not be sent back: {type(err).__name__}: {err}"))
        sock.sendall(payload)
        sock.close()
    finally:
        os._exit(0)  # skip the parent's atexit handlers and finalizers: they are not this process's


def _parent_gone(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # once: a second SIGTERM ends the child at once
    if _isolated[-1:] != [os.getpid()]:  # a process the call forked inherited this handler: die as by default
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise ParentExited("the helper process that forked this read exited during it; what the read started was stopped")


def _start_time() -> float:
    import psutil

    return float(psutil.Process().create_time())


def _stop_stdlib_helpers() -> None:
    """
    Let the forkserver and resource tracker ``multiprocessing`` started here exit, the way the stdlib does.

    Each exits when the last write end of its pipe closes: the forkserver's "alive" pipe, and the
    resource tracker's (which ignores SIGTERM, and unlinks what was leaked before it exits). This
    process closes its own ends here, without waiting: the processes started under them hold the other
    ends and are stopped next, and then both helpers go (or are stopped) instead of waiting out the grace.
    """
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    tracker = getattr(sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None)
    for owner, attribute in ((server, "_forkserver_alive_fd"), (tracker, "_fd")):
        fd = getattr(owner, attribute, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
            setattr(owner, attribute, None)


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
