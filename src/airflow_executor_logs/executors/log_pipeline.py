"""
The read path of a RUNNING task's executor logs, and all of its state, on one object.

:class:`ExecutorLogPipeline` resolves the task's executor class, then answers with the class-level
reader, with nothing (the class does not override ``get_task_log``), or with a short-lived executor.
Every answer has one shape (messages and line streams, :mod:`.reader_protocol`) and passes once
through the answer policy (:mod:`.answers`). Problems become lines in the log, never exceptions: an
exception here would turn the log request into a 500. Task handlers share one pipeline per process
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
from airflow_executor_logs.executors.answer_memory import AnswerMemory
from airflow_executor_logs.executors.answers import Answer, AnswerPolicy, ReadKey
from airflow_executor_logs.executors.problem_answers import problem_notice
from airflow_executor_logs.executors.reader_protocol import (
    Outcome,
    ReadContext,
    ReaderRegistration,
    ReadReport,
    StreamingTaskLog,
    TaskLog,
    TextStream,
    TextStreams,
    as_streaming,
    to_task_log,
)
from airflow_executor_logs.executors.reader_registry import FoundReader, ReaderRegistry, ReadPath, class_path
from airflow_executor_logs.executors.resilience.bulkhead import Bulkhead
from airflow_executor_logs.executors.resilience.deadline import Deadline, ReadDeadlineExceeded, timed_out
from airflow_executor_logs.executors.resilience.guard import ReaderBlocked, ReaderGuard
from airflow_executor_logs.executors.resilience.single_flight import SingleFlight, SingleFlightTimeout
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
    "reader_failure",
    "register_reader",
    "unresolved_message",
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
    Reads RUNNING tasks' executor logs; owns the resolved classes, the readers (with their clients,
    caches and breakers), the settings snapshot, the metrics sink, the bulkhead, the blocked-reader
    bound, the answer policy and the once-per-class warnings.

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
        self.policy: AnswerPolicy = policy or AnswerMemory(lambda: self.settings)
        self.guard = ReaderGuard(max_blocked=max_blocked_readers)
        self.bulkhead = Bulkhead()
        #: Short-lived executors being built, at most ``max_concurrent_fallback_reads``.
        self.fallback_bulkhead = Bulkhead()
        self.helper = helper or Zygote()
        self._fixed_settings = settings
        self._settings: tuple[float, Settings] | None = None
        self._clock = clock
        self._warned: set[type] = set()
        #: Short-lived executor reads in flight: identical ones share one.
        self._fallback_reads: SingleFlight[ReadKey, tuple[list[str], list[str]]] = SingleFlight()
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
        registration = ReaderRegistration(
            executor=executor if isinstance(executor, str) else class_path(executor),
            reader=reader,
            include_subclasses=include_subclasses,
        )
        self.registry.register(registration)
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
            self.metrics.incr(metric_names.FAILURES, getattr(ti, "executor", None))
            # Not through the policy: there is no executor class to key a read by. Its source message
            # also stops core from reading the worker's served logs: the task names an executor this
            # API server does not know, so which worker (if any) serves its log is unknown, and the
            # attempt only adds a misleading error (a pod's host name that does not resolve).
            name = getattr(ti, "executor", None) or "(default)"
            summary = f"Unknown executor {name!r}: check the task's executor and [core] executor"
            return _problem(Outcome.FAILED, unresolved_message(err), summary=summary)
        key = ReadKey.of(class_path(executor.executor_cls), ti, try_number)
        try:
            path: ReadPath | Exception = self.registry.read_path(executor)
        except Exception as err:  # a reader factory that raises, for one
            path = err
        # A short-lived executor's read lasts up to fallback_timeout, any other up to read_timeout.
        short_lived = isinstance(path, ReadPath) and path.kind == ReadPath.SHORT_LIVED
        lasts = settings.fallback_timeout if short_lived else settings.read_timeout
        return self.policy.answer(key, lambda: self._read(key, executor, path, ti, settings), lasts=lasts)

    def _read(
        self,
        key: ReadKey,
        executor: ResolvedExecutor,
        path: ReadPath | Exception,
        ti: Any,
        settings: Settings,
    ) -> Answer:
        try_number = key.try_number
        if isinstance(path, Exception):
            log.error("Finding the log reader of %s failed", executor.executor_cls.__name__, exc_info=path)
            self.metrics.incr(metric_names.FAILURES, executor.executor_cls)
            return _problem(Outcome.FAILED, reader_failure(executor.executor_cls, path))
        if path.reader is not None:
            self.metrics.incr(metric_names.CLASS_READS, executor.executor_cls)
            deadline = Deadline(settings.read_timeout, self._clock)
            context = ReadContext(deadline=deadline, settings=settings, metrics=self.metrics)
            return self._call_reader_in_slot(path.reader, executor, ti, try_number, context)
        if path.kind == ReadPath.NOTHING:
            return Answer([], TextStreams())
        return self._read_with_short_lived_executor(key, executor, ti, settings)

    def _call_reader_in_slot(
        self, reader: FoundReader, executor: ResolvedExecutor, ti: Any, try_number: int, context: ReadContext
    ) -> Answer:
        """Call the reader in a bulkhead slot, held until its answer is read, closed or past its deadline."""
        settings, deadline = context.settings, context.deadline
        slot = self.bulkhead.acquire(settings.max_concurrent_reads, min(settings.slot_wait, deadline.left()), deadline)
        if slot is None:
            self.metrics.incr(metric_names.BULKHEAD_REFUSALS, executor.executor_cls)
            message = (
                f"Executor logs unavailable: this API server worker is busy, {settings.max_concurrent_reads} reads "
                f"of running tasks' logs are already waiting ([{SECTION}] max_concurrent_reads); try again shortly"
            )
            summary = f"API worker busy ({settings.max_concurrent_reads} log reads waiting)"
            return _problem(Outcome.REFUSED, message, summary=summary)
        try:
            messages, streams = self._call_reader(reader, executor, ti, try_number, context)
        except BaseException:
            slot.release()
            raise
        return Answer(messages, slot.hold_until_read(streams), context.report)

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
            self.metrics.incr(metric_names.TIMEOUTS, executor_cls)
            message = timed_out(f"Executor logs unavailable: {reader.name}", context.deadline.seconds)
            summary = f"{reader.name} timed out ({context.deadline.seconds:g} s)"
            return _problem_task_log(report, Outcome.TIMEOUT, message, summary=summary)
        except ReaderBlocked as err:
            self.metrics.incr(metric_names.FAILURES, executor_cls)
            message = f"Executor logs unavailable: {reader.name}: {err}"
            summary = f"{reader.name} blocked (earlier reads still running)"
            return _problem_task_log(report, Outcome.REFUSED, message, summary=summary)
        except Exception as err:
            log.exception("Class-level log reader for %s failed", executor_cls.__name__)
            self.metrics.incr(metric_names.FAILURES, executor_cls)
            return _problem_task_log(report, Outcome.FAILED, reader_failure(executor_cls, err))

    def _read_with_short_lived_executor(
        self, key: ReadKey, executor: ResolvedExecutor, ti: Any, settings: Settings
    ) -> Answer:
        executor_cls = executor.executor_cls
        if not settings.fallback_enabled:
            message = (
                f"Executor logs unavailable: {executor_cls.__name__} has no class-level log reader and "
                f"[{SECTION}] fallback_enabled is off."
            )
            summary = f"No log reader for {executor_cls.__name__}: set [{SECTION}] fallback_enabled = True to read it"
            return _problem(Outcome.REFUSED, message, summary=summary, transient=False)
        self._warn_once(executor_cls)
        self.metrics.incr(metric_names.FALLBACK_READS, executor_cls)
        # People polling one task at the same moment share one short-lived executor.
        try:
            task_log = self._fallback_reads.call(
                key,
                lambda: self._short_lived_read_in_slot(executor, ti, key.try_number, settings),
                wait=settings.fallback_timeout,
            )
        except _FallbackBusy:
            self.metrics.incr(metric_names.BULKHEAD_REFUSALS, executor_cls)
            limit = settings.max_concurrent_fallback_reads
            message = (
                f"Executor logs unavailable: this API server worker is already building {limit} short-lived "
                f"executors ([{SECTION}] max_concurrent_fallback_reads); try again shortly"
            )
            return _problem(Outcome.REFUSED, message, summary=f"API worker busy ({limit} short-lived reads running)")
        except PreloadStartedThread as err:  # that read alone is refused; the next one runs without the preload
            self.metrics.incr(metric_names.FAILURES, executor_cls)
            return _problem(Outcome.REFUSED, reader_failure(executor_cls, err), summary=err.summary)
        except (ExecutorDeadlineExceeded, SingleFlightTimeout) as err:
            self.metrics.incr(metric_names.TIMEOUTS, executor_cls)
            seconds = settings.fallback_timeout
            summary = f"Short-lived {executor_cls.__name__} timed out ({seconds:g} s)"
            return _problem(Outcome.TIMEOUT, f"Executor logs unavailable: {err}", summary=summary)
        except Exception as err:
            log.warning("Short-lived %s failed to read task logs: %s", executor_cls.__name__, err)
            self.metrics.incr(metric_names.FAILURES, executor_cls)
            return _problem(Outcome.FAILED, reader_failure(executor_cls, err))
        messages, streams = as_streaming(task_log)
        return Answer(messages, streams)

    def _short_lived_read_in_slot(
        self, executor: ResolvedExecutor, ti: Any, try_number: int, settings: Settings
    ) -> tuple[list[str], list[str]]:
        deadline = Deadline(settings.fallback_timeout, self._clock)
        # No wait for a slot: a build takes seconds, and a read waiting for one holds an API request thread meanwhile.
        slot = self.fallback_bulkhead.acquire(settings.max_concurrent_fallback_reads, 0.0, deadline)
        if slot is None:
            raise _FallbackBusy
        try:
            return read_with_short_lived_executor(
                executor, ti, try_number, helper=self.helper, deadline=deadline, idle=settings.fallback_idle
            )
        finally:
            slot.release()

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


class _FallbackBusy(Exception):
    """No slot for one more short-lived executor in this worker."""


def _problem_task_log(
    report: ReadReport,
    outcome: Outcome,
    message: str,
    *,
    summary: str = "",
    transient: bool | None = None,
) -> StreamingTaskLog:
    """
    A problem the pipeline met, reported, as a source message and as the last log line (see
    :func:`~.problem_answers.problem_answer` for why both; the answer policy may render it again with
    the last good lines).
    """
    report.problem(outcome, message, summary=summary, transient=transient)
    return [report.detail], TextStreams([TextStream(problem_notice(report))])


def _problem(outcome: Outcome, message: str, *, summary: str = "", transient: bool | None = None) -> Answer:
    report = ReadReport()
    messages, streams = _problem_task_log(report, outcome, message, summary=summary, transient=transient)
    return Answer(messages, streams, report)


def unresolved_message(err: ExecutorResolutionError) -> str:
    """What the log view shows for a task whose executor class cannot be resolved."""
    return f"Executor logs unavailable: {err}"


def reader_failure(executor_cls: type, err: BaseException) -> str:
    """What the log view shows when ``executor_cls``'s reader (or short-lived executor) failed with ``err``."""
    from airflow_executor_logs.utils.isolated_call import IsolatedCallFailed

    reason = str(err) if isinstance(err, IsolatedCallFailed) else f"{type(err).__name__}: {err}"
    return f"Executor logs unavailable: {executor_cls.__name__} failed to read logs: {reason}"


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
