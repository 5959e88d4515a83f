"""
The read path of a RUNNING task's executor logs, and all of its state, on one object.

:class:`ExecutorLogPipeline` resolves the task's executor class, then answers with the class-level
reader, with nothing (the class does not override ``get_task_log``), or with a short-lived executor.
Every answer has one shape (:class:`~.answers.Answer`) and passes once through the answer policy
(:mod:`.answers`), which shares identical reads in flight. Problems are reported typed, never raised (an
exception here would turn the log request into a 500), and rendered once (:mod:`.problem_answers`); their
outcome is counted once, from the read's report. Task handlers share one pipeline per process
(:func:`process_pipeline`); a test builds its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow_executor_logs import metrics as metric_names
from airflow_executor_logs.config import REFRESH_SECONDS, SECTION, Settings
from airflow_executor_logs.executors import problem_answers as problems
from airflow_executor_logs.executors.answer_memory import AnswerMemory
from airflow_executor_logs.executors.answers import Answer, AnswerPolicy, ReadKey
from airflow_executor_logs.executors.reader_protocol import (
    ReadContext,
    ReaderRegistration,
    ReadReport,
    StreamingTaskLog,
    TaskLog,
    TextStreams,
    as_streaming,
    to_task_log,
)
from airflow_executor_logs.executors.reader_registry import FoundReader, ReaderRegistry, ReadPath, class_path
from airflow_executor_logs.executors.resilience.bulkhead import Bulkhead
from airflow_executor_logs.executors.resilience.deadline import Deadline, ReadDeadlineExceeded
from airflow_executor_logs.executors.resilience.guard import ReaderBlocked, ReaderGuard
from airflow_executor_logs.executors.resolution import ExecutorResolutionError, ExecutorResolver, ResolvedExecutor
from airflow_executor_logs.executors.short_lived import ExecutorDeadlineExceeded, read_with_short_lived_executor
from airflow_executor_logs.metrics import Metrics, MetricsSink
from airflow_executor_logs.utils.zygote import PreloadStartedThread, Zygote

log = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_READERS",
    "ExecutorLogPipeline",
    "process_pipeline",
    "read_running_task_log",
    "register_reader",
    "use_process_pipeline",
]

#: Readers this package ships, as ``module:attribute`` of a registration, imported on first use. Their
#: one channel: they are not entry points, so the first read does not scan every installed package.
BUILTIN_READERS = (
    "airflow_executor_logs.executors.kubernetes.reader:REGISTRATION",
    "airflow_executor_logs.executors.kubernetes.aws_eks:REGISTRATION",
)


class ExecutorLogPipeline:
    """
    Reads RUNNING tasks' executor logs; owns the resolved classes, the readers (with their clients, caches
    and breakers), the settings, the metrics sink, the bulkheads, the blocked-reader bound, the answer policy.

    :param settings: fixed settings; by default a snapshot of ``conf`` refreshed every few seconds.
    :param registry: the readers; by default the shipped ones, entry points and code registrations.
    :param policy: what happens around each answer; by default :class:`~.answer_memory.AnswerMemory`
        (answers reused within ``answer_ttl``, the last good lines shown when a read fails).
    :param max_blocked_readers: threads each reader may leave blocked past their deadline.
    :param helper: the process that forks short-lived executors' children; by default one of its own.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        registry: ReaderRegistry | None = None,
        metrics: MetricsSink | None = None,
        resolver: ExecutorResolver | None = None,
        policy: AnswerPolicy | None = None,
        max_blocked_readers: int = 4,
        clock: Callable[[], float] = time.monotonic,
        helper: Zygote | None = None,
    ) -> None:
        self.registry = registry or ReaderRegistry(builtins=BUILTIN_READERS)
        self.metrics: MetricsSink = metrics or Metrics()
        self.resolver = resolver or ExecutorResolver()
        self.policy: AnswerPolicy = policy or AnswerMemory(lambda: self.settings, metrics=self.metrics)
        self.guard = ReaderGuard(max_blocked=max_blocked_readers)
        self.bulkhead = Bulkhead()
        #: Short-lived executors being built, at most ``max_concurrent_fallback_reads``.
        self.fallback_bulkhead = Bulkhead()
        self.helper = helper or Zygote()
        self._fixed_settings = settings
        self._settings: tuple[float, Settings] | None = None
        self._clock = clock
        self._warned: set[type] = set()
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        """The settings in force: fixed at construction, or read from ``conf`` at most every few seconds."""
        if self._fixed_settings is not None:
            return self._fixed_settings
        now = self._clock()
        snapshot = self._settings
        if snapshot is None or now - snapshot[0] >= REFRESH_SECONDS:
            try:
                settings = Settings.from_conf()
            except Exception as err:  # a bad value must not break every log read: say it, use defaults
                log.error("Invalid [%s] setting, using the defaults: %s: %s", SECTION, type(err).__name__, err)
                settings = Settings()
            snapshot = self._settings = (now, settings)
        return snapshot[1]

    def register(self, executor: str | type, reader: Any, *, include_subclasses: bool = False) -> ReaderRegistration:
        """Register ``reader`` for ``executor`` (a class or its import path) in this pipeline."""
        path = executor if isinstance(executor, str) else class_path(executor)
        self.registry.register(registration := ReaderRegistration(path, reader, include_subclasses))
        return registration

    # ------------------------------------------------------------------ the two forms core asks for

    def read(self, ti: Any, try_number: int) -> TaskLog:
        """Drop-in for ``executor.get_task_log(ti, try_number)`` that builds no long-lived executor."""
        return to_task_log(self.answer(ti, try_number).task_log())

    def read_streaming(self, ti: Any, try_number: int) -> StreamingTaskLog:
        """
        Drop-in for ``executor.get_streaming_task_log(ti, try_number)``.

        An answer that exists only in the list form (a reader of that form, or a short-lived executor)
        is streamed line by line, so that core never reads twice.
        """
        return self.answer(ti, try_number).task_log()

    # ------------------------------------------------------------------ the read path

    def answer(self, ti: Any, try_number: int) -> Answer:
        """The answer for try ``try_number`` of ``ti``, with how its read went."""
        settings = self.settings
        try:
            executor = self.resolver.resolve(ti, multi_team=settings.multi_team)
        except ExecutorResolutionError as err:
            # Not through the policy: there is no executor class to key a read by. Its source message
            # also stops core from reading the worker's served logs: the task names an executor this
            # API server does not know, so which worker (if any) serves its log is unknown, and the
            # attempt only adds a misleading error (a pod's host name that does not resolve).
            return problems.alone(problems.unresolved(ti, err, self._report(getattr(ti, "executor", None))))
        key = ReadKey.of(class_path(executor.executor_cls), ti, try_number)
        try:
            path: ReadPath | Exception = self.registry.read_path(executor)
        except Exception as err:  # a reader factory that raises, for one
            path = err
        # A short-lived executor's read lasts up to fallback_timeout, any other up to read_timeout.
        short_lived = isinstance(path, ReadPath) and path.kind == ReadPath.SHORT_LIVED
        lasts = settings.fallback_timeout if short_lived else settings.read_timeout
        return self.policy.answer(key, lambda: self._read(key, executor, path, ti, settings), lasts=lasts)

    def _report(self, executor: type | str | None) -> ReadReport:
        """A read's report, its problem counted here: the one site of the outcome metrics."""
        return ReadReport(lambda counter: self.metrics.incr(counter, executor))

    def _read(
        self, key: ReadKey, executor: ResolvedExecutor, path: ReadPath | Exception, ti: Any, settings: Settings
    ) -> Answer:
        executor_cls = executor.executor_cls
        if isinstance(path, Exception):
            log.error("Finding the log reader of %s failed", executor_cls.__name__, exc_info=path)
            return problems.failed(executor_cls, path, self._report(executor_cls))
        if path.reader is not None:
            self.metrics.incr(metric_names.CLASS_READS, executor_cls)
            deadline = Deadline(settings.read_timeout, self._clock)
            context = ReadContext(deadline, settings, self.metrics, self._report(executor_cls))
            return self._call_reader_in_slot(path.reader, executor, ti, key.try_number, context)
        if path.kind == ReadPath.NOTHING:
            return Answer([], TextStreams())
        return self._read_with_short_lived_executor(key, executor, ti, settings)

    def _call_reader_in_slot(
        self, reader: FoundReader, executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext
    ) -> Answer:
        """Call the reader in a bulkhead slot, held until its answer is read, closed or past its deadline."""
        settings, deadline, report = context.settings, context.deadline, context.report
        slot = self.bulkhead.acquire(settings.max_concurrent_reads, min(settings.slot_wait, deadline.left()), deadline)
        if slot is None:
            return problems.worker_busy(settings.max_concurrent_reads, report)
        try:
            messages, streams = self._call_reader(reader, executor, ti, try_number, context)
        except BaseException:
            slot.release()
            raise
        return Answer(messages, slot.hold_until_read(streams), report)

    def _call_reader(
        self, reader: FoundReader, executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext
    ) -> StreamingTaskLog:
        executor_cls, report = executor.executor_cls, context.report
        try:
            if reader.keeps_deadline:
                return reader.read(executor, ti, try_number, context)
            guarded = self.guard.call(
                reader.name, lambda: reader.read(executor, ti, try_number, context), context.deadline
            )
            messages, streams = guarded.answer()
            return list(messages), guarded.adopt_streams(streams, report)
        except ReadDeadlineExceeded:
            return problems.reader_timed_out(reader.name, context.deadline.seconds, report).task_log()
        except ReaderBlocked as err:  # refused, and counted so: the reader's blocked threads are its bulkhead
            return problems.reader_blocked(reader.name, err, report).task_log()
        except Exception as err:
            log.exception("Class-level log reader for %s failed", executor_cls.__name__)
            return problems.failed(executor_cls, err, report).task_log()

    def _read_with_short_lived_executor(
        self, key: ReadKey, executor: ResolvedExecutor, ti: Any, settings: Settings
    ) -> Answer:
        """Identical polls at the same moment share this read through the policy's table of reads in flight."""
        executor_cls = executor.executor_cls
        if not settings.fallback_enabled:
            return problems.no_reader(executor_cls)
        self._warn_once(executor_cls)
        self.metrics.incr(metric_names.FALLBACK_READS, executor_cls)
        report = self._report(executor_cls)
        deadline = Deadline(settings.fallback_timeout, self._clock)
        # No wait for a slot: a build takes seconds, and a read waiting for one holds an API request thread meanwhile.
        slot = self.fallback_bulkhead.acquire(settings.max_concurrent_fallback_reads, 0.0, deadline)
        if slot is None:
            return problems.worker_busy(settings.max_concurrent_fallback_reads, report, short_lived=True)
        try:
            task_log = read_with_short_lived_executor(
                executor, ti, key.try_number, helper=self.helper, deadline=deadline, idle=settings.fallback_idle
            )
        except PreloadStartedThread as err:  # that read alone is refused; the next one runs without the preload
            return problems.preload_refused(executor_cls, err, report)
        except ExecutorDeadlineExceeded as err:
            return problems.short_lived_timed_out(executor_cls, settings.fallback_timeout, err, report)
        except Exception as err:
            log.warning("Short-lived %s failed to read task logs: %s", executor_cls.__name__, err)
            return problems.failed(executor_cls, err, report)
        finally:
            slot.release()
        return Answer(*as_streaming(task_log))

    def _warn_once(self, executor_cls: type) -> None:
        with self._lock:
            if executor_cls in self._warned:
                return
            self._warned.add(executor_cls)
        log.warning(
            "%s.%s overrides get_task_log but has no class-level log reader; each read of a running "
            "task's logs builds a short-lived executor and tears it down. Register a reader to avoid it.",
            executor_cls.__module__,
            executor_cls.__qualname__,
        )


_process_pipeline: ExecutorLogPipeline | None = None
_process_lock = threading.Lock()


def process_pipeline() -> ExecutorLogPipeline:
    """The pipeline this process's task handlers share, built on first use."""
    global _process_pipeline
    if _process_pipeline is None:
        with _process_lock:
            if _process_pipeline is None:
                _process_pipeline = ExecutorLogPipeline()
    return _process_pipeline


def use_process_pipeline(pipeline: ExecutorLogPipeline | None) -> ExecutorLogPipeline | None:
    """Make ``pipeline`` the one this process's handlers share (``None``: a fresh one on next use)."""
    global _process_pipeline
    with _process_lock:
        previous, _process_pipeline = _process_pipeline, pipeline
    return previous


def register_reader(executor: str | type, reader: Any, *, include_subclasses: bool = False) -> ReaderRegistration:
    """Register ``reader`` for ``executor`` (a class or its import path) in this process's pipeline."""
    return process_pipeline().register(executor, reader, include_subclasses=include_subclasses)


def read_running_task_log(ti: Any, try_number: int) -> TaskLog:
    """``get_task_log``'s answer for ``ti``, read through this process's pipeline."""
    return process_pipeline().read(ti, try_number)
