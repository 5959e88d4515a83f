"""
Run a function in a forked child process that leaves no process behind.

The child makes itself a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``), so every process started
under it stays its descendant, even one whose parent exits (a double fork, ``setsid``): none can be
reparented to PID 1 and escape. When the function returns or raises, the child stops all its
descendants and sends the outcome back. If the deadline passes first, the caller stops the child's
descendants, then the child. Each call has its own child, so concurrent calls never touch each
other's processes, and nothing else in the calling process is signalled.

The child is forked, as Airflow forks its task runners: it starts at once, with everything the
caller has imported. Airflow disposes of the forked ORM pool itself (``settings.clean_in_fork``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import selectors
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import psutil

from airflow_executor_logs.utils.processes import is_gone, stop_processes

T = TypeVar("T")

__all__ = ["IsolatedCallFailed", "IsolatedCallTimedOut", "call_in_child", "stop_descendants"]

_fork_lock = threading.Lock()
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
#: Signals a server installs Python handlers for; the child must die of them, not run the server's.
_RESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class IsolatedCallFailed(Exception):
    """The function raised in the child; ``str()`` is ``"ExceptionType: message"``."""


class IsolatedCallTimedOut(TimeoutError):
    """The child did not answer by the deadline; it and its descendants were stopped."""


def call_in_child(fn: Callable[[], T], *, deadline: float, grace: float = 2.0) -> T:
    """
    ``fn()`` in a forked child, its answer pickled back; at most ``deadline`` seconds.

    :raises IsolatedCallFailed: ``fn`` raised (or its answer could not be sent back).
    :raises IsolatedCallTimedOut: no answer within ``deadline``.
    """
    # A child forked by a concurrent call would inherit this call's write end and keep it open, so the
    # answer would wait for that other child too: only one call at a time holds an open write end.
    with _fork_lock:
        receive, send = os.pipe()
        try:
            pid = os.fork()
        except BaseException:
            os.close(receive)
            os.close(send)
            raise
        if pid == 0:  # the child: never returns
            os.close(receive)
            _child_main(fn, send, grace)
        os.close(send)
    payload: bytes | None = None
    try:
        payload = _read_until(receive, time.monotonic() + deadline)
    finally:
        os.close(receive)
        # Only this thread waits for this pid (multiprocessing's bookkeeping would let another thread's
        # Process.start() reap it): the child exits once it has answered, or is stopped here.
        if payload is None or not _exited(pid, grace):
            stop_tree(pid, grace)
        _reap(pid)
    if payload is None:
        raise IsolatedCallTimedOut(deadline)
    try:
        ok, value = pickle.loads(payload)
    except Exception:
        raise IsolatedCallFailed("the child process died without answering") from None
    if not ok:
        raise IsolatedCallFailed(value)
    return value  # type: ignore[no-any-return]


def _read_until(fd: int, give_up_at: float) -> bytes | None:
    """Everything written to ``fd`` until its end; ``None`` if it is still open at ``give_up_at``."""
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = give_up_at - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _exited(pid: int, timeout: float) -> bool:
    """Whether ``pid`` (our child) exits within ``timeout``; reaps it if so."""
    give_up_at = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if time.monotonic() >= give_up_at:
            return False
        time.sleep(0.005)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _child_main(fn: Callable[[], Any], send: int, grace: float) -> NoReturn:
    try:
        _reinit_inherited_locks()
        for number in _RESET_SIGNALS:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(number, signal.SIG_DFL)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the caller's process dies: so does this child
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        try:
            outcome: tuple[bool, Any] = (True, fn())
        except BaseException as err:
            outcome = (False, f"{type(err).__name__}: {err}")
        finally:
            stop_descendants(grace)
        try:
            payload = pickle.dumps(outcome)
        except Exception as err:
            payload = pickle.dumps((False, f"its answer could not be sent back: {type(err).__name__}: {err}"))
        with os.fdopen(send, "wb") as pipe:
            pipe.write(payload)
    finally:
        os._exit(0)  # skip the caller's atexit handlers and finalizers: they are not this process's


def _reinit_inherited_locks() -> None:
    """
    Release, in the child, the locks other threads of the caller may have held when it forked.

    A forked child has only the forking thread; a lock another thread held stays held forever. Python
    re-creates ``logging``'s locks after a fork, but structlog, which Airflow 3 logs through, keeps a
    write lock per output file that it does not: the child's first log line would then block (seen
    under load in a real API server). Each lock is re-initialised in place, as ``logging`` does, so
    the loggers holding it see it free.
    """
    _fork_lock._at_fork_reinit()  # type: ignore[attr-defined]  # held by the thread that forked this child
    output = sys.modules.get("structlog._output")
    for lock in list(getattr(output, "WRITE_LOCKS", {}).values()):
        reinit = getattr(lock, "_at_fork_reinit", None)
        if reinit is not None:
            reinit()


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _descendants(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [process for process in root.children(recursive=True) if not is_gone(process)]
    except psutil.Error:
        return []


def stop_descendants(grace: float, root: int | None = None) -> None:
    """
    Stop every descendant of ``root`` (this process by default): SIGTERM, ``grace`` seconds, SIGKILL.

    Repeated until none is left alive, since a dying process may start another. Zombies count as
    gone; this process reaps those that are its children.
    """
    try:
        parent = psutil.Process(root)
    except psutil.Error:
        return
    _until_no_descendants(parent, lambda descendants: stop_processes(descendants, grace, kill_wait=grace))
    if root is None:
        _reap_children()


def stop_tree(pid: int, grace: float) -> None:
    """SIGKILL the descendants of ``pid`` until none is left, then ``pid`` itself."""
    try:
        root = psutil.Process(pid)
        root.suspend()  # a stopped subreaper forks nothing more, and its orphans still come back to it
    except psutil.Error:
        return
    # Their parent is stopped, so they stay zombies, which count as gone.
    _until_no_descendants(root, lambda descendants: stop_processes(descendants, grace=0, kill_wait=grace))
    with contextlib.suppress(psutil.Error):
        root.kill()


def _until_no_descendants(root: psutil.Process, stop: Callable[[list[psutil.Process]], object]) -> None:
    for _ in range(10):
        descendants = _descendants(root)
        if not descendants:
            return
        stop(descendants)


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
