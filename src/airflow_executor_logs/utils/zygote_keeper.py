"""
The worker's one long-lived thread for its zygote helpers: it starts them, reaps them, and kills those let go.

A helper says it is ready (one message on its control socket) once it has started and imported the preloads
it was started with: until then a read that runs out of time does not judge it stuck, so a replacement's cold
start (a new interpreter importing Airflow) does not get it replaced again; past :data:`START_LIMIT` it is.

A helper asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), and the kernel means the
parent *thread*: a helper started from a request thread would be killed when AnyIO retires that thread.
So every helper is started here, on a thread that lives as long as the worker. Stopping one (its tree
SIGKILLed, then reaped within a bound) also happens here, never on a request thread or under a lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import psutil

from airflow_executor_logs.utils.isolated_call import IsolatedCallFailed, IsolatedCallTimedOut
from airflow_executor_logs.utils.processes import stop_tree
from airflow_executor_logs.utils.zygote_helper import HELPER_MARK, MAIN

__all__ = ["START_LIMIT", "Keeper", "Running", "kill"]

log = logging.getLogger(__name__)

#: Seconds a helper's tree gets to go after SIGKILL (and to be reaped).
KILL_GRACE = 1.0
#: Seconds a helper may take to start (interpreter, imports, its preloads) before it is presumed stuck there.
START_LIMIT = 60.0


@dataclass(eq=False)
class Running:
    """One helper this process started: the process (its identity fixed by psutil) and its control socket."""

    proc: subprocess.Popen[bytes]
    handle: psutil.Process
    control: socket.socket
    #: What it imports before it says it is ready.
    preload: tuple[str, ...] = ()
    started_at: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)
    _reading: threading.Lock = field(default_factory=threading.Lock)

    def await_ready(self, give_up_at: float) -> bool:
        """
        Whether it said it is ready by ``give_up_at`` (``time.monotonic()``). One that exited or was let go
        counts as ready: sending it the call fails, which says so.
        """
        while not self.ready.is_set():
            left = give_up_at - time.monotonic()
            if left <= 0 or not self._reading.acquire(timeout=left):
                return self.ready.is_set()
            try:
                if not self.ready.is_set() and select.select([self.control], [], [], max(left, 0.0))[0]:
                    self.control.recv(16, socket.MSG_DONTWAIT)  # b"ready", or b"" as it exited
                    self.ready.set()
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # closed (let go) meanwhile
                self.ready.set()
            finally:
                self._reading.release()
        return True


class Keeper:
    """
    The worker's one long-lived thread for helpers: it starts them, reaps them, and kills those let go.

    A helper's parent-death signal is tied to the thread that forked it, so helpers are never started
    from a request thread (AnyIO retires idle ones). Work is handed over and waited for with a deadline.
    """

    #: Seconds between looks at the helpers it keeps (reaping one that exited on idle).
    POLL = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._owner = 0
        #: Helpers let go, and when to kill each if it has not exited by then.
        self._leaving: dict[Running, float] = {}
        self._kept: list[Running] = []

    def start(self, idle: float, timeout: float, preload: list[str]) -> Running:
        """A new helper (it imports ``preload``, then says it is ready), started by the keeper within ``timeout`` s."""
        started: Future[Running] = Future()

        def task() -> None:
            if not started.set_running_or_notify_cancel():
                return
            try:
                helper = _start_helper(idle, preload)
            except BaseException as err:
                started.set_exception(err)
                return
            self._kept.append(helper)
            started.set_result(helper)

        self._submit(task)
        try:
            return started.result(timeout)
        except FutureTimeout:
            if not started.cancel():  # it started after all, too late: let it go
                started.add_done_callback(self._stop_late)
            raise IsolatedCallTimedOut("the helper did not start before the deadline", started=False) from None

    def _stop_late(self, started: Future[Running]) -> None:
        if started.exception() is None:
            self.stop(started.result(), 0.0)

    def stop(self, helper: Running, after: float) -> None:
        """Close ``helper``'s control socket now; kill its tree if it has not exited ``after`` s from now."""
        with contextlib.suppress(OSError):
            helper.control.close()
        kill_at = time.monotonic() + after
        self._submit(lambda: self._leaving.__setitem__(helper, min(kill_at, self._leaving.get(helper, kill_at))))

    def _submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            if self._owner != os.getpid():  # first use, or this process was forked: the thread is not here
                self._owner = os.getpid()
                self._tasks = queue.SimpleQueue()
                self._leaving, self._kept = {}, []
                threading.Thread(target=self._run, name="executor-logs-zygote-keeper", daemon=True).start()
            self._tasks.put(task)

    def _run(self) -> None:
        tasks = self._tasks
        while True:
            now = time.monotonic()
            wait = min([self.POLL, *(max(at - now, 0.0) for at in self._leaving.values())])
            try:
                task = tasks.get(timeout=wait)
            except queue.Empty:
                task = self._look
            try:
                task()
            except Exception:  # never let one failure end the thread every helper depends on
                log.exception("The zygote keeper thread's task failed")

    def _look(self) -> None:
        """Reap the helpers that exited; kill those let go that are past their time."""
        now = time.monotonic()
        for helper, kill_at in list(self._leaving.items()):
            if helper.proc.poll() is None and now >= kill_at:
                kill(helper)
            if helper.proc.poll() is not None:
                del self._leaving[helper]
        self._kept = [helper for helper in self._kept if helper.proc.poll() is None]


def kill(helper: Running) -> None:
    """SIGKILL ``helper``'s tree (it is suspended first, so nothing escapes), then reap it within a bound."""
    stop_tree(helper.handle, grace=KILL_GRACE)
    with contextlib.suppress(subprocess.TimeoutExpired):
        helper.proc.wait(KILL_GRACE)


def _start_helper(idle: float, preload: list[str]) -> Running:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                MAIN,
                str(theirs.fileno()),
                repr(idle),
                str(os.getpid()),
                json.dumps(preload),
                HELPER_MARK,
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    try:
        handle = psutil.Process(proc.pid)  # our child, not reaped yet: the pid is its own
    except psutil.Error:
        proc.kill()
        proc.wait()
        ours.close()
        raise IsolatedCallFailed("the helper process exited as it started") from None
    return Running(proc, handle, ours, tuple(preload))
