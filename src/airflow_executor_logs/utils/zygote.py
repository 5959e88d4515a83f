"""
A single-threaded helper process that forks the isolated children of a multi-threaded one: the worker's side.

An API server worker runs many threads (AnyIO's, our fetch pool), so it must not fork: the child
would inherit, held forever, every lock another thread held at that instant. Each worker instead
starts one *zygote* (``subprocess``: fork and exec at once, which is safe) the first time it needs
an isolated call. The zygote (:mod:`.zygote_helper`) never starts a thread; for each call it forks a
child that runs :func:`~airflow_executor_logs.utils.isolated_call.run_isolated`, so every guarantee of
an isolated call holds (subreaper, deadline, one child per call).

Why our own helper rather than the stdlib's ``forkserver``: that one is a process-wide singleton that
executors share (a Manager started under it would not be the read's descendant, so nothing could stop
it per read), it is no subreaper, it never exits while the process lives, and it cannot say which
worker it belongs to.

What crosses: the call is pickled (so it must be a module-level function or a ``functools.partial``
of one), with the worker's environment, ``sys.path`` and start method, which the child adopts.

No call waits past its deadline, whatever the helper does: the lock, the wait for a new helper to be
ready, the send and the wait for the answer all have one. A ready helper that lets a call time out before
any child took it (stuck in a preload import, SIGSTOPped, its socket full) is killed, with its tree, and
the next call starts a new one. One still starting is not (a cold start outlasts a short deadline), unless
it has been starting for :data:`~.zygote_keeper.START_LIMIT` seconds.
Helpers are started and stopped by one long-lived thread of the worker (:mod:`.zygote_keeper`).

A :class:`Zygote` is a seam the read pipeline builds and holds, like its Kubernetes client cache: the
process's pipeline (``process_pipeline()``) holds the worker's one helper; a test passes its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from airflow_executor_logs.utils.isolated_call import (
    IsolatedCallFailed,
    IsolatedCallNotStarted,
    IsolatedCallTimedOut,
    await_outcome,
)
from airflow_executor_logs.utils.zygote_helper import HELPER_MARK, LENGTH, is_helper_cmdline, threaded_module
from airflow_executor_logs.utils.zygote_keeper import KILL_GRACE, START_LIMIT, Keeper, Running, kill

if TYPE_CHECKING:
    from airflow_executor_logs.executors.resilience.deadline import Deadline

T = TypeVar("T")

__all__ = ["HELPER_MARK", "PreloadStartedThread", "Zygote", "is_helper_cmdline"]


class PreloadStartedThread(IsolatedCallFailed):
    """This call's preload ``module`` left the helper with a thread: the call refused, ``module`` dropped for good."""

    def __init__(self, module: str) -> None:
        super().__init__(
            f"importing {module} in the log helper started a thread, and a process with threads cannot fork "
            "safely; it is no longer preloaded, so the next read works without it"
        )
        self.module = module
        #: The problem line's head: the module, and why (the line's tail says when to read again).
        self.summary = f"{module} starts a thread at import: read refused"


class Zygote:
    """
    The worker's side of one helper process: starts it when needed, sends it calls.

    Fork-safe: in a forked child it knows no helper (that one is its parent's) and starts its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._helper: Running | None = None
        self._owner = 0
        self._keeper = Keeper()
        #: Modules whose import left a helper with threads, or stuck: never preloaded again.
        self._unsafe: set[str] = set()
        #: Modules some helper imported before forking a call: not the cause when a helper is stuck.
        self._proven: set[str] = set()
        #: The longest deadline asked for: how long a helper let go may still be running calls.
        self._longest = 0.0

    @property
    def pid(self) -> int | None:
        """The live helper's pid, if this process has one."""
        helper = self._helper
        if helper is None or self._owner != os.getpid() or helper.proc.poll() is not None:
            return None
        return helper.proc.pid

    def call(
        self,
        fn: Callable[[], T],
        *,
        deadline: Deadline,
        grace: float = 2.0,
        idle: float = 120.0,
        preload: Iterable[str] = (),
    ) -> T:
        """
        ``fn()`` in a child the helper forks, its answer pickled back; no later than ``deadline``.

        :raises IsolatedCallFailed: ``fn`` raised, its answer could not be sent back, or the helper failed.
        :raises IsolatedCallTimedOut: no answer before ``deadline``.
        """
        left = max(deadline.left(), 0.001)
        give_up_at = time.monotonic() + left
        self._longest = max(self._longest, left + grace)
        preload = list(dict.fromkeys(preload))
        try:
            body = pickle.dumps((dict(os.environ), list(sys.path), _start_method(), pickle.dumps(fn)))
        except Exception as err:
            raise IsolatedCallFailed(f"the call cannot be sent to the helper: {type(err).__name__}: {err}") from None
        request = LENGTH.pack(len(body)) + body
        for attempt in (1, 2):
            modules = [name for name in preload if name not in self._unsafe]
            ours, theirs = socket.socketpair()
            try:
                message = json.dumps({"preload": modules, "grace": grace}).encode()
                helper = self._send(message, theirs, idle, give_up_at, modules)
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            with ours:
                ours.settimeout(max(give_up_at - time.monotonic(), 0.001))
                with contextlib.suppress(TimeoutError, OSError):  # the child died or is late: the outcome says which
                    ours.sendall(request)
                    ours.shutdown(socket.SHUT_WR)  # a helper that refuses the call reads it to this end first
                try:
                    answer = await_outcome(ours, give_up_at, grace)
                    self._proven.update(modules)
                    return answer  # type: ignore[no-any-return]
                except IsolatedCallTimedOut as err:
                    if err.started:
                        self._proven.update(modules)
                    else:  # no child took the call: the helper is stuck, in one of the modules not proven yet
                        self._unsafe.update(set(modules) - self._proven)
                        self._let_go(helper, kill=True)
                    raise
                except IsolatedCallNotStarted:
                    self._let_go(helper, kill=True)  # it exited (idle, killed) as the call arrived
                    if attempt == 1:
                        continue
                    raise
                except IsolatedCallFailed as err:
                    module = threaded_module(str(err))
                    if module is None:
                        raise
                    self._unsafe.add(module)  # for good: no helper of this process imports it again
                    self._let_go(helper, kill=False)  # its running calls finish; it forks no more
                    if module in modules:  # this call asked for it: only this call is refused
                        raise PreloadStartedThread(module) from None
                    if attempt == 1:  # another call's preload tainted that helper: a new one serves this call
                        continue
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, message: bytes, call: socket.socket, idle: float, give_up_at: float, modules: list[str]) -> Running:
        """Hand ``call`` (the call's socket) to a ready helper, starting one if needed; returns that helper."""
        for _ in range(2):
            helper = self._locked(give_up_at, lambda: self._running_locked(idle, give_up_at, modules))
            if not helper.await_ready(give_up_at):  # still starting: not stuck, unless it has been for too long
                if time.monotonic() - helper.started_at >= START_LIMIT:
                    self._unsafe.update(set(helper.preload) - self._proven)
                    self._let_go(helper, kill=True)
                raise IsolatedCallTimedOut("the helper was still starting at the deadline", started=False)
            self._proven.update(helper.preload)
            if self._locked(give_up_at, functools.partial(self._send_locked, helper, message, call, give_up_at)):
                return helper
        raise IsolatedCallFailed("the helper process could not be reached")

    def _locked(self, give_up_at: float, fn: Callable[[], T]) -> T:
        if not self._lock.acquire(timeout=max(give_up_at - time.monotonic(), 0.0)):
            raise IsolatedCallTimedOut("waited for the helper's lock until the deadline", started=False)
        try:
            return fn()
        finally:
            self._lock.release()

    def _send_locked(self, helper: Running, message: bytes, call: socket.socket, give_up_at: float) -> bool:
        """Whether ``helper`` took the call; ``False``: it is gone (let go, the next attempt starts another)."""
        helper.control.settimeout(max(give_up_at - time.monotonic(), 0.001))
        try:
            socket.send_fds(helper.control, [message], [call.fileno()])
            return True
        except TimeoutError:  # its socket is full: it takes no calls
            self._let_go_locked(helper, kill=True)
            raise IsolatedCallTimedOut("the helper took no call until the deadline", started=False) from None
        except OSError:
            self._let_go_locked(helper, kill=True)
            return False

    def _running_locked(self, idle: float, give_up_at: float, modules: list[str]) -> Running:
        helper = self._helper
        if helper is not None and self.pid is not None:
            return helper
        if helper is not None:
            self._let_go_locked(helper, kill=True)
        started = self._keeper.start(idle, max(give_up_at - time.monotonic(), 0.0), modules)
        self._helper, self._owner = started, os.getpid()
        return started

    def _let_go(self, helper: Running, *, kill: bool) -> None:
        # Bounded like everything else: if the lock is busy that long, the next call finds the helper gone.
        if self._lock.acquire(timeout=1.0):
            try:
                self._let_go_locked(helper, kill=kill)
            finally:
                self._lock.release()
        elif kill:
            self._keeper.stop(helper, 0.0)

    def _let_go_locked(self, helper: Running, *, kill: bool) -> None:
        """Stop sending ``helper`` calls; the keeper stops it (at once if ``kill``), never this thread."""
        if helper is not self._helper:
            if kill:
                self._keeper.stop(helper, 0.0)
            return
        self._helper = None
        if self._owner == os.getpid():
            self._keeper.stop(helper, 0.0 if kill else self._longest + KILL_GRACE)

    def stop(self, timeout: float = 10.0) -> None:
        """Let the helper go and wait up to ``timeout`` s until it is gone (tests; it exits with its worker)."""
        with self._lock:
            helper, self._helper = self._helper, None
        if helper is None or self._owner != os.getpid():
            return
        helper.control.close()  # it finishes its calls and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            helper.proc.wait(timeout)
        if helper.proc.poll() is None:
            kill(helper)


def _start_method() -> str | None:
    return multiprocessing.get_start_method(allow_none=True)
