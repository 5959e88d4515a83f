"""
The zygote's own side: the single-threaded helper process that forks one isolated child per call.

Started by :mod:`airflow_executor_logs.utils.zygote` as ``python -c`` :data:`MAIN`, which before anything
else asks the kernel to SIGKILL it when its worker dies (``PR_SET_PDEATHSIG``, no Python loop needed, so
also in the middle of an import or while SIGSTOPped), exits if the worker is already gone, and drops the
working directory ``python -c`` puts first on ``sys.path``.

It imports the preloads it was started with and says it is ready. Its loop then forks a child per call,
reaps children, and stops (Managers first) any process re-parented to it that is not a live read child:
the orphans of a read child the OOM killer took. SIGTERM, SIGINT and SIGHUP
end it the same way: what it still runs is stopped. It exits when its control socket closes (once its
children are done), after ``idle`` seconds without calls, and when its worker goes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import pickle
import re
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil

from airflow_executor_logs.utils.isolated_call import HEADER, _prctl, run_isolated, thread_count
from airflow_executor_logs.utils.processes import is_gone, is_manager, stop_descendants, stop_each

__all__ = ["HELPER_MARK", "LENGTH", "MAIN", "THREADED", "is_helper_cmdline", "main", "threaded_module"]

#: The last argument of the helper's command line.
HELPER_MARK = "airflow-executor-logs-zygote"


def is_helper_cmdline(cmdline: Iterable[str]) -> bool:
    """Whether a process's command line is a helper's (its last argument is :data:`HELPER_MARK`)."""
    args = list(cmdline)
    return bool(args) and args[-1] == HELPER_MARK


#: The helper's program: the parent-death signal first (right after exec), then the check that closes its race.
MAIN = (
    "import sys, os\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL\n"
    "if os.getppid() != int(sys.argv[3]):\n"
    "    os._exit(0)  # the worker died before the line above\n"
    "if sys.path and sys.path[0] == '':\n"
    "    del sys.path[0]  # python -c: the server's working directory\n"
    "from airflow_executor_logs.utils.zygote_helper import main\n"
    "main(sys.argv[1:])\n"
)
LENGTH = struct.Struct("!Q")
#: The helper checks on its worker and its orphans at least this often (seconds).
WATCH_INTERVAL = 0.5
#: What the helper answers (instead of forking) once a preload has left it with a thread.
THREADED = "ZygoteThreaded"
_THREADED_MODULE = re.compile(rf"^{THREADED} (\S+):")
#: Seconds an orphan gets between SIGTERM and SIGKILL (and after SIGKILL): gone within 2 s of its adoption.
_ORPHAN_GRACE = 0.5
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def threaded_module(message: str) -> str | None:
    """The module named by a :data:`THREADED` refusal, else ``None``."""
    match = _THREADED_MODULE.match(message)
    return match.group(1) if match else None


@dataclass
class _Helper:
    control: socket.socket | None
    wake: tuple[int, int]
    #: Live read children, by pid.
    children: set[int] = field(default_factory=set)
    preloaded: set[str] = field(default_factory=set)
    #: The preload that left this helper with a thread: it forks no more.
    tainted: str | None = None
    next_orphan_check: float = 0.0


def main(argv: list[str]) -> None:
    """The helper: fork one isolated child per call until the worker goes or ``idle`` s pass without one."""
    control_fd, idle, worker, preload = int(argv[0]), float(argv[1]), int(argv[2]), json.loads(argv[3])
    os.set_inheritable(control_fd, False)  # never passed on to a program an executor execs
    _prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphans of a killed child come back here, to be stopped
    for number in _SIGNALS:
        signal.signal(number, _exit_on_signal)
    # A child's exit wakes the loop at once (through this pipe), so it is reaped at once.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    control_socket = socket.socket(fileno=control_fd)
    helper = _Helper(control_socket, (wake_r, wake_w))
    try:
        helper.tainted = _preload(preload, helper.preloaded)
        with contextlib.suppress(OSError):
            control_socket.send(b"ready")  # until now, a read that timed out did not judge it stuck
        last_call = time.monotonic()
        while os.getppid() == worker:
            if _reap(helper.children) or time.monotonic() >= helper.next_orphan_check:
                _stop_orphans(helper.children)
                helper.next_orphan_check = time.monotonic() + WATCH_INTERVAL
            control = helper.control
            if control is None and not helper.children:
                break  # let go by the worker, and its reads are done
            idle_now = control is not None and not helper.children and time.monotonic() - last_call > idle
            watched = [wake_r] if control is None else [wake_r, control.fileno()]
            ready, _, _ = select.select(watched, [], [], 0 if idle_now else WATCH_INTERVAL)
            if wake_r in ready:
                os.read(wake_r, 4096)
            if control is None or control.fileno() not in ready:
                if idle_now:
                    break  # a call arriving after this finds the socket closed; the worker starts a new helper
                continue
            message, fds, _flags, _address = socket.recv_fds(control, 65536, 1)
            for fd in fds:
                os.set_inheritable(fd, False)  # recv_fds drops MSG_CMSG_CLOEXEC; nothing runs in between
            if not message:
                control.close()  # the worker let this helper go: no new calls, the running ones finish
                helper.control = None
                continue
            for fd in fds:
                _serve(json.loads(message), fd, helper)
            last_call = time.monotonic()  # after the call's preloads: idle counts from when it started running
    except SystemExit:
        pass
    finally:
        if helper.control is not None:
            helper.control.close()
        stop_descendants(grace=1.0)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _reap(children: set[int]) -> bool:
    """Reap every exited child; whether there was one."""
    reaped = False
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            reaped = True
    return reaped


def _stop_orphans(children: set[int]) -> None:
    """Stop the processes re-parented to this helper that are not live read children: Managers first."""
    try:
        adopted = [proc for proc in psutil.Process().children() if proc.pid not in children and not is_gone(proc)]
    except psutil.Error:
        return
    if not adopted:
        return
    managers = [proc for proc in adopted if is_manager(proc)]
    for group in (managers, [proc for proc in adopted if proc not in managers]):
        stop_each(group, _ORPHAN_GRACE, kill_wait=_ORPHAN_GRACE, only_children_of=os.getpid())
    _reap(children)


def _serve(request: dict[str, Any], fd: int, helper: _Helper) -> None:
    """Fork the child for one call on ``fd``, or refuse it if a preload left this helper with a thread."""
    sock = socket.socket(fileno=fd)
    if helper.tainted is None:
        helper.tainted = _preload(request.get("preload", []), helper.preloaded)
    if helper.tainted is not None:
        answer = (False, f"{THREADED} {helper.tainted}: importing it left the helper with {thread_count()} threads")
        with sock, contextlib.suppress(OSError):
            sock.sendall(HEADER.pack(-1, 0.0) + pickle.dumps(answer))
            _read_to_end(sock)  # closed with the call unread, the socket would be reset before the worker reads this
        return
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        _let_go_of_the_helper(helper)
        run_isolated(lambda: _receive_call(sock), sock, grace=float(request.get("grace", 2.0)), parent=me)
    sock.close()
    helper.children.add(pid)


def _preload(names: Iterable[str], preloaded: set[str]) -> str | None:
    """Import ``names`` not imported yet, one by one; the first whose import left a thread running, if any."""
    for name in names:
        if name in preloaded:
            continue
        preloaded.add(name)
        with contextlib.suppress(Exception):
            importlib.import_module(name)
        if thread_count() > 1:
            return name
    return None


def _let_go_of_the_helper(helper: _Helper) -> None:
    """In a fresh child: none of the helper's descriptors or signal handling."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if helper.control is not None:
        helper.control.close()  # else the worker could still send to a dead helper, and fill its buffer
    for fd in helper.wake:
        with contextlib.suppress(OSError):
            os.close(fd)


def _receive_call(sock: socket.socket) -> Callable[[], Any]:
    """Read the call, and adopt the worker's environment, ``sys.path`` and start method."""
    header = _recv_exactly(sock, LENGTH.size)
    environ, path, start_method, call = pickle.loads(_recv_exactly(sock, LENGTH.unpack(header)[0]))
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


def _read_to_end(sock: socket.socket) -> None:
    sock.settimeout(1.0)
    while sock.recv(1 << 16):
        pass


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
