"""A task-handler mixin that reads RUNNING task logs without keeping an executor per process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from airflow.utils.log.file_task_handler import FileTaskHandler

from airflow_executor_logs import version_compat
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline, process_pipeline
from airflow_executor_logs.executors.problem_answers import remote_store_problem
from airflow_executor_logs.executors.reader_protocol import ReadReport, StreamingTaskLog, TaskLog
from airflow_executor_logs.executors.resilience.deadline import Deadline
from airflow_executor_logs.utils.log import continuation

log = logging.getLogger(__name__)

__all__ = [
    "ExecutorLogReaderMixin",
    "ExecutorLogStandIn",
    "ExecutorLogsFileTaskHandler",
    "bounded_remote_read",
    "release_db_connection",
]

#: Task-instance states whose log is live: the remote store holds a finished try's log, not theirs.
_LIVE_STATES = ("running", "deferred")


def release_db_connection(ti: Any) -> None:
    """
    Give the pooled connection of ``ti``'s session back before the executor read waits on its API.

    The log endpoint's session holds it until the response is built, so every read waiting on a slow
    Kubernetes API held one: a few dozen viewers emptied the pool, and the token check every request
    makes on the event loop then blocked it. Only a session with nothing pending is committed (a
    read-only transaction ends); Airflow's sessions do not expire objects on commit, and a later query
    checks a connection out again.
    """
    session = version_compat.session_of(ti)
    if session is None or not session.in_transaction() or session.in_nested_transaction():
        return  # nothing to give back, or a savepoint the caller still owns
    if session.new or session.dirty or session.deleted:
        return  # the caller's pending changes are not ours to commit
    try:
        session.commit()
    except Exception:  # the read goes on holding it, as before
        log.debug("could not release the task instance's DB connection", exc_info=True)


def bounded_remote_read(pipeline: ExecutorLogPipeline, store: str, read: Callable[[], Any]) -> Any:
    """
    ``read()`` (core's remote read of a live try) on the pipeline's guard, cut at ``remote_read_timeout``.

    A failure or timeout becomes a source message and a notice line (not counted in ``log_pos``), so core
    goes on to the executor's and the worker's lines; ``NotImplementedError`` (no remote store) is core's
    own signal and passes. At most the guard's ``max_blocked`` hung reads per store are left on threads.
    """
    deadline = Deadline(pipeline.settings.remote_read_timeout)
    try:
        guarded = pipeline.guard.call(store, read, deadline, option="remote_read_timeout")
        sources, logs = guarded.answer()
    except NotImplementedError:
        raise
    except Exception as err:
        log.warning("Reading a running task's remote log from %s failed: %s: %s", store, type(err).__name__, err)
        return continuation.counted_task_log(remote_store_problem(store, err, deadline.seconds))
    if logs and not all(isinstance(chunk, str) for chunk in logs):  # the stream interface: cut at the deadline too
        return continuation.counted((list(sources), guarded.adopt_streams(list(logs), ReadReport())))
    guarded.finish()
    return sources, logs


def _live_try(ti: Any, try_number: int) -> bool:
    """Whether ``try_number`` is ``ti``'s running (or deferred) try, read with remote logging on."""
    from airflow.configuration import conf

    state = getattr(ti, "state", None)
    if getattr(state, "value", state) not in _LIVE_STATES or getattr(ti, "try_number", None) != try_number:
        return False
    return conf.getboolean("logging", "remote_logging", fallback=False)


def _remote_store_name() -> str:
    """The class name of the remote store Airflow reads from (its ``RemoteLogIO``)."""
    try:
        remote = version_compat.remote_task_log()
    except Exception:
        remote = None
    return "remote log store" if remote is None else type(remote).__name__


class ExecutorLogStandIn:
    """
    What core 3.4's ``_read`` gets from ``_get_executor`` instead of an executor: it answers the two log
    calls through the pipeline, and is nothing else. No executor is built.
    """

    def __init__(self, pipeline: ExecutorLogPipeline) -> None:
        self.pipeline = pipeline

    def get_streaming_task_log(self, ti: Any, try_number: int) -> StreamingTaskLog:
        return continuation.counted(self.pipeline.read_streaming(ti, try_number))

    def get_task_log(self, ti: Any, try_number: int) -> TaskLog:
        return continuation.counted_task_log(self.pipeline.read(ti, try_number))


class ExecutorLogReaderMixin:
    """
    Override the hook the installed core's ``FileTaskHandler._read`` calls to reach the task's executor.

    Upstream builds the task's executor, caches it for the life of the process and never ends it. This
    reads through an :class:`ExecutorLogPipeline`, which resolves only the executor class. On cores up
    to 3.3 the hook is ``_get_executor_get_task_log``; on 3.4 it is ``_get_executor``. It also makes
    continuation reads (tailing) give every line once on every core (:mod:`.continuation`), and renders
    the log file name without a second database connection.
    """

    #: The pipeline this handler reads through; ``None`` means the one per process (:func:`process_pipeline`).
    executor_log_pipeline: ExecutorLogPipeline | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if version_compat.hook_called_by(type(self)) is None:
            log.error(
                "airflow-executor-logs is inactive: FileTaskHandler._read of Airflow core %s calls neither %s nor "
                "%s, so running tasks' executor logs are read the stock way (building the executor).",
                version_compat.core_version(),
                version_compat.HOOK_GET_TASK_LOG,
                version_compat.HOOK_GET_EXECUTOR,
            )

    @property
    def pipeline(self) -> ExecutorLogPipeline:
        return self.executor_log_pipeline or process_pipeline()

    def _get_executor_get_task_log(self, ti: Any) -> Callable[[Any, int], TaskLog]:
        release_db_connection(ti)
        return ExecutorLogStandIn(self.pipeline).get_task_log

    def _get_executor(self, ti: Any) -> ExecutorLogStandIn:
        release_db_connection(ti)
        return ExecutorLogStandIn(self.pipeline)

    def _render_filename(self, ti: Any, try_number: int, *args: Any, **kwargs: Any) -> str:
        """Render the log file name in the task instance's own session, not a second one."""
        if not args:  # 3.0 to 3.2 also take the session positionally: then it is the caller's
            kwargs = version_compat.render_filename_kwargs(ti, kwargs)
        return str(super()._render_filename(ti, try_number, *args, **kwargs))  # type: ignore[misc]

    def _read_remote_logs(self, ti: Any, try_number: int, metadata: dict[str, Any] | None = None) -> Any:
        """Core's remote read; for a live try bounded, and its failure a warning line (:func:`bounded_remote_read`)."""
        read = super()._read_remote_logs  # type: ignore[misc]
        if not _live_try(ti, try_number):
            return read(ti, try_number, metadata)
        release_db_connection(ti)
        return bounded_remote_read(self.pipeline, _remote_store_name(), lambda: read(ti, try_number, metadata))

    def _read(self, ti: Any, try_number: int, metadata: dict[str, Any] | None = None) -> Any:
        """Core's ``_read``, with ``log_pos`` counting the log's own lines only (:mod:`.continuation`)."""
        with continuation.reading(metadata) as read:
            stream, out_metadata = super()._read(ti, try_number, read.core_metadata(metadata))  # type: ignore[misc]
        return read.resume(stream, out_metadata)


class ExecutorLogsFileTaskHandler(ExecutorLogReaderMixin, FileTaskHandler):  # type: ignore[misc]
    """``FileTaskHandler`` that reads running-task executor logs without building executors."""
