"""
Stop processes: SIGTERM, wait, SIGKILL, wait, and reap what is ours.

A process is named by a handle that fixes its identity, never by a bare pid: a :class:`psutil.Process`
(pid and start time, so a reused pid is never signalled), or the :class:`subprocess.Popen` or
:class:`multiprocessing.process.BaseProcess` that started it (which then also reaps it, so its owner
still sees the exit status). Gone means :func:`~airflow_executor_logs.utils.processes.is_gone`: a zombie
counts as gone.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeAlias, TypeVar

import psutil

from airflow_executor_logs.utils.processes.state import is_gone

__all__ = ["Outcome", "StopResult", "Stoppable", "stop_each", "stop_processes"]

#: What the stop functions accept: a psutil handle, or the Popen / multiprocessing object that owns the child.
Stoppable: TypeAlias = psutil.Process | subprocess.Popen[Any] | BaseProcess
P = TypeVar("P", bound=Stoppable)

_POLL_INTERVAL = 0.05


class Outcome(str, enum.Enum):
    """What happened to one process."""

    STOPPED = "stopped"  #: exited after our signal (:attr:`StopResult.sent` says which)
    GONE = "gone"  #: had exited before it was signalled
    SKIPPED = "skipped"  #: not ours (no longer a child of ``only_children_of``, or this process): left alone
    DENIED = "denied"  #: we may not signal it
    ALIVE = "alive"  #: still running after SIGKILL


@dataclass(frozen=True)
class StopResult(Generic[P]):
    """One process given to :func:`stop_each`, what happened to it and the last signal it was sent."""

    proc: P
    outcome: Outcome
    sent: signal.Signals | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid


class _Target:
    """One process to stop, through the handle that names it. Subclasses signal it and tell whether it is gone."""

    def __init__(self, proc: Stoppable) -> None:
        self.proc = proc
        self.outcome = Outcome.ALIVE
        self.sent: signal.Signals | None = None

    def gone(self) -> bool:
        """Whether it has exited (reaping it if it is ours)."""
        raise NotImplementedError

    def _deliver(self, sig: signal.Signals) -> None:
        raise NotImplementedError

    def _skip(self) -> bool:
        return False

    def send(self, sig: signal.Signals) -> Outcome | None:
        """Send ``sig``; ``None`` when it was delivered, else why not."""
        if self.gone():
            return Outcome.GONE
        if self._skip():
            return Outcome.SKIPPED
        try:
            self._deliver(sig)
        except (psutil.NoSuchProcess, ProcessLookupError):
            return Outcome.GONE
        except (psutil.AccessDenied, PermissionError):
            return Outcome.DENIED
        return None


class _PsutilTarget(_Target):
    proc: psutil.Process

    def __init__(self, proc: psutil.Process, only_children_of: int | None) -> None:
        super().__init__(proc)
        self.only_children_of = only_children_of

    def gone(self) -> bool:
        if self.proc.pid > 0 and self.proc.is_running():  # never waitpid() a reused pid, nor 0 (any child)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.proc.pid, os.WNOHANG)  # reap it if it is our child
        return is_gone(self.proc)

    def _skip(self) -> bool:
        if self.proc.pid <= 0 or self.proc.pid == os.getpid():
            return True
        if self.only_children_of is None:
            return False
        try:
            return self.proc.ppid() != self.only_children_of
        except psutil.Error:
            return True

    def _deliver(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)  # psutil refuses when the pid now names another process


class _PopenTarget(_Target):
    proc: subprocess.Popen[Any]

    def gone(self) -> bool:
        return self.proc.poll() is not None

    def _deliver(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)  # a no-op once Popen has reaped the child


class _MultiprocessingTarget(_Target):
    proc: BaseProcess

    def gone(self) -> bool:
        try:
            if self.proc.pid is None or self.proc.exitcode is not None:  # exitcode reaps it
                with contextlib.suppress(AssertionError, ValueError):
                    self.proc.join(0)  # let multiprocessing forget it
                return True
        except ValueError:  # closed
            return True
        return False

    def _deliver(self, sig: signal.Signals) -> None:
        if sig == signal.SIGKILL:
            self.proc.kill()
        else:
            self.proc.terminate()


def _target(proc: Stoppable, only_children_of: int | None) -> _Target:
    if isinstance(proc, psutil.Process):
        return _PsutilTarget(proc, only_children_of)
    if isinstance(proc, subprocess.Popen):
        return _PopenTarget(proc)
    return _MultiprocessingTarget(proc)


def _wait(targets: list[_Target], timeout: float) -> list[_Target]:
    """Wait up to ``timeout`` seconds for ``targets`` to go; return those still running."""
    deadline = time.monotonic() + timeout
    pending = targets
    while True:
        pending = [target for target in pending if not target.gone()]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            return pending
        time.sleep(min(_POLL_INTERVAL, left))


def _signal(targets: list[_Target], sig: signal.Signals) -> list[_Target]:
    """Send ``sig`` to each target; record why it was not sent; return the ones it was sent to."""
    delivered: list[_Target] = []
    for target in targets:
        failure = target.send(sig)
        if failure is None:
            target.sent = sig
            delivered.append(target)
        elif failure == Outcome.GONE and target.sent is not None:
            target.outcome = Outcome.STOPPED  # went between the wait and this signal
        else:
            target.outcome = failure
    return delivered


def _kill(targets: list[_Target], kill_wait: float) -> None:
    """SIGKILL ``targets`` and wait up to ``kill_wait`` seconds for them to go."""
    killed = _signal(targets, signal.SIGKILL)
    alive = {id(target) for target in _wait(killed, kill_wait)}
    for target in killed:
        target.outcome = Outcome.ALIVE if id(target) in alive else Outcome.STOPPED


def stop_each(
    procs: Iterable[P], grace: float = 5.0, *, kill_wait: float = 5.0, only_children_of: int | None = None
) -> list[StopResult[P]]:
    """
    SIGTERM ``procs``, wait up to ``grace`` s, SIGKILL the rest, wait up to ``kill_wait`` s; report each.

    With ``only_children_of`` a :class:`psutil.Process` is signalled only while its parent is that pid
    (a child's pid cannot be reused before its parent reaps it); any other is left alone (``skipped``).
    This process is never signalled. Our children are reaped.
    """
    pairs = [(proc, _target(proc, only_children_of)) for proc in procs]
    targets = [target for _, target in pairs]
    terminated = _signal(targets, signal.SIGTERM)
    survivors = {id(target) for target in _wait(terminated, grace)}
    for target in terminated:
        if id(target) not in survivors:
            target.outcome = Outcome.STOPPED
    _kill([target for target in terminated if id(target) in survivors], kill_wait)
    return [StopResult(proc, target.outcome, target.sent) for proc, target in pairs]


def stop_processes(
    procs: Iterable[P], grace: float = 5.0, *, kill_wait: float = 5.0, only_children_of: int | None = None
) -> list[P]:
    """:func:`stop_each`, returning the processes still running (or that we may not signal)."""
    results = stop_each(procs, grace, kill_wait=kill_wait, only_children_of=only_children_of)
    return [result.proc for result in results if result.outcome in (Outcome.ALIVE, Outcome.DENIED)]
