"""Which path a read takes (class-level reader, nothing, short-lived executor), in both answer forms."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from airflow_executor_logs.config import Settings
from airflow_executor_logs.executors.log_pipeline import ExecutorLogPipeline
from airflow_executor_logs.executors.problem_answers import LINE_WIDTH
from airflow_executor_logs.executors.reader_protocol import Notice
from airflow_executor_logs_testing import executors as fx
from tests.support.airflow_state import conf_vars
from tests.support.processes import HELPER, child_pids, new_children, start_the_helper
from tests.support.task_instances import fake_ti


@pytest.fixture(autouse=True)
def _all_fakes_configured() -> Iterator[None]:
    with conf_vars({("core", "executor"): fx.all_executors_setting()}):
        yield


@pytest.fixture(autouse=True, scope="module")
def _helper_is_up() -> None:
    start_the_helper()


@pytest.fixture
def pipeline() -> ExecutorLogPipeline:
    return ExecutorLogPipeline(settings=Settings(read_timeout=2.0, fallback_timeout=10.0), helper=HELPER)


def _notice(logs: list[str]) -> dict[str, Any]:
    assert len(logs) == 1, logs
    return json.loads(logs[0])  # type: ignore[no-any-return]


def test_reader_path_never_instantiates_the_class(pipeline: ExecutorLogPipeline) -> None:
    before = child_pids()
    constructed = fx.constructed(fx.NativeReaderExecutor)
    with mock.patch.object(multiprocessing, "Manager", side_effect=AssertionError("Manager started")):
        result = pipeline.read(fake_ti("NativeReaderExecutor", task_id="t1"), 4)
    assert result == (["class-level read of t1"], ["native line try 4"])
    assert fx.constructed(fx.NativeReaderExecutor) == constructed
    assert not new_children(before)


def test_registered_reader_is_used_instead_of_building(pipeline: ExecutorLogPipeline) -> None:
    def reader(cls: type, ti: object, try_number: int) -> tuple[list[str], list[str]]:
        return ["registered"], ["ok"]

    pipeline.register(fx.ManagerExecutor, reader)
    constructed = fx.constructed(fx.ManagerExecutor)
    assert pipeline.read(fake_ti("ManagerExecutor"), 1) == (["registered"], ["ok"])
    assert fx.constructed(fx.ManagerExecutor) == constructed


def test_a_registration_in_one_pipeline_does_not_leak_into_another(pipeline: ExecutorLogPipeline) -> None:
    pipeline.register(fx.CountingExecutor, lambda cls, ti, try_number: (["registered"], ["ok"]))
    other = ExecutorLogPipeline(settings=Settings(fallback_enabled=False))
    messages, _ = other.read(fake_ti("CountingExecutor"), 1)
    assert "registered" not in messages
    assert messages[-1].endswith("has no class-level log reader and [executor_logs] fallback_enabled is off.")


def test_the_streaming_form_is_lazy_and_the_list_form_is_derived_from_it(pipeline: ExecutorLogPipeline) -> None:
    pulled: list[str] = []

    def lines() -> Iterator[str]:
        for line in ["one", "two", "three"]:
            pulled.append(line)
            yield line

    def reader(executor: Any, ti: Any, try_number: int, context: Any) -> Any:
        return ["from the reader"], [lines()]

    pipeline.register(fx.CountingExecutor, reader)
    messages, streams = pipeline.read_streaming(fake_ti("CountingExecutor"), 1)
    assert messages == ["from the reader"]
    assert pulled == []  # nothing read before core asks
    assert next(streams[0]) == "one"
    assert list(streams[0]) == ["two", "three"]
    assert pipeline.read(fake_ti("CountingExecutor"), 1) == (["from the reader"], ["one\ntwo\nthree"])


def test_a_list_answer_is_streamed_without_a_second_read(pipeline: ExecutorLogPipeline) -> None:
    calls: list[int] = []

    def reader(cls: type, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        calls.append(try_number)
        return ["listed"], ["a\nb", "c"]

    pipeline.register(fx.CountingExecutor, reader)
    messages, streams = pipeline.read_streaming(fake_ti("CountingExecutor"), 1)
    assert (messages, [list(stream) for stream in streams]) == (["listed"], [["a", "b"], ["c"]])
    assert calls == [1]


def test_notices_in_a_stream_become_messages_in_the_list_form(pipeline: ExecutorLogPipeline) -> None:
    def reader(executor: Any, ti: Any, try_number: int, context: Any) -> Any:
        return ["m"], [iter(["a", Notice("cut short"), "b"]), iter([])]

    pipeline.register(fx.CountingExecutor, reader)
    assert pipeline.read(fake_ti("CountingExecutor"), 1) == (["m", "cut short"], [f"a\n{Notice('cut short')}\nb", ""])
    line = next(line for line in pipeline.read_streaming(fake_ti("CountingExecutor"), 1)[1][0] if line != "a")
    assert json.loads(line) == {"event": "cut short", "level": "error", "logger": "airflow_executor_logs"}


def test_executor_without_override_is_never_built(pipeline: ExecutorLogPipeline) -> None:
    constructed = fx.constructed(fx.PlainExecutor)
    assert pipeline.read(fake_ti("PlainExecutor"), 1) == ([], [])
    assert pipeline.read_streaming(fake_ti("PlainExecutor"), 1) == ([], [])
    assert fx.constructed(fx.PlainExecutor) == constructed


@pytest.mark.parametrize(
    "executor",
    [
        "airflow.executors.local_executor.LocalExecutor",
        "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    ],
)
def test_core_executors_without_override_are_never_built(executor: str, pipeline: ExecutorLogPipeline) -> None:
    module_path, class_name = executor.rsplit(".", 1)
    module = pytest.importorskip(module_path)
    with (
        conf_vars({("core", "executor"): executor}),
        mock.patch.object(getattr(module, class_name), "__init__", side_effect=AssertionError("built")),
    ):
        assert pipeline.read(fake_ti(None), 1) == ([], [])


def test_kubernetes_executor_is_never_built(tmp_path: Any) -> None:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor

    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    with (
        conf_vars(
            {
                ("core", "executor"): "KubernetesExecutor",
                ("kubernetes_executor", "config_file"): str(unreachable),
            }
        ),
        mock.patch.object(KubernetesExecutor, "__init__", side_effect=AssertionError("built")) as init,
        mock.patch.object(multiprocessing, "Manager", side_effect=AssertionError("Manager started")),
    ):
        messages, _ = ExecutorLogPipeline().read(fake_ti("KubernetesExecutor"), 1)
    init.assert_not_called()
    assert messages[0] == "Attempting to fetch logs from pod worker-pod-1 through kube API"
    assert messages[-1].startswith("Reading from k8s pod logs failed:")
    assert "Connection refused" in messages[-1]


def test_subclass_without_its_own_reader_takes_the_fallback(pipeline: ExecutorLogPipeline) -> None:
    constructed = fx.constructed(fx.OverridesBelowNativeExecutor)
    assert pipeline.read(fake_ti("OverridesBelowNativeExecutor"), 1) == (["subclass instance read"], [])
    assert fx.constructed(fx.OverridesBelowNativeExecutor) == constructed + 1


def test_unknown_executor_is_a_message_in_the_log_stream(pipeline: ExecutorLogPipeline) -> None:
    messages, logs = pipeline.read(fake_ti("DefinitelyNotConfigured"), 1)
    # A source message, so that core does not go on to a worker's served logs that nothing says exist.
    assert len(messages) == 1
    assert messages[0].startswith("Executor logs unavailable: Cannot find executor 'DefinitelyNotConfigured'")
    notice = _notice(logs)
    assert notice["level"] == "error"
    assert (
        notice["event"] == "Unknown executor 'DefinitelyNotConfigured': check the task's executor and [core] executor"
    )


def test_a_failing_reader_is_a_message_not_an_exception(pipeline: ExecutorLogPipeline) -> None:
    def reader(cls: type, ti: object, try_number: int) -> tuple[list[str], list[str]]:
        raise ValueError("reader broke")

    pipeline.register(fx.CountingExecutor, reader)
    messages, logs = pipeline.read(fake_ti("CountingExecutor"), 1)
    detail = "Executor logs unavailable: CountingExecutor failed to read logs: ValueError: reader broke"
    assert messages == [detail]
    assert (_notice(logs)["event"], _notice(logs)["level"]) == (detail, "error")


def test_settings_come_from_conf_and_are_reread_after_a_while() -> None:
    now = [1000.0]
    with conf_vars({("executor_logs", "read_timeout"): "7"}):
        pipeline = ExecutorLogPipeline(clock=lambda: now[0])
        assert pipeline.settings.read_timeout == 7.0
        with conf_vars({("executor_logs", "read_timeout"): "9", ("core", "executor"): fx.all_executors_setting()}):
            assert pipeline.settings.read_timeout == 7.0  # the snapshot holds...
            now[0] += 5.0
            assert pipeline.settings.read_timeout == 9.0  # ...until it is refreshed


@pytest.mark.parametrize("value", ["5s", "inf"])
def test_a_bad_setting_falls_back_to_its_default_and_never_breaks_a_read(value: str) -> None:
    with conf_vars({("executor_logs", "read_timeout"): value}):
        pipeline = ExecutorLogPipeline()
        assert pipeline.settings.read_timeout == Settings().read_timeout
        assert pipeline.read(fake_ti("NativeReaderExecutor", task_id="t"), 1) == (
            ["class-level read of t"],
            ["native line try 1"],
        )


def test_a_reader_factory_that_raises_is_a_message(pipeline: ExecutorLogPipeline) -> None:
    from airflow_executor_logs.executors.reader_protocol import ReaderRegistration
    from airflow_executor_logs.executors.reader_registry import class_path

    def broken_factory() -> Any:
        raise RuntimeError("no client config")

    pipeline.registry.register(ReaderRegistration(class_path(fx.CountingExecutor), factory=broken_factory))
    messages, logs = pipeline.read(fake_ti("CountingExecutor"), 1)
    detail = "Executor logs unavailable: CountingExecutor failed to read logs: RuntimeError: no client config"
    assert messages == [detail]
    # Cut to fit the log panel, where it is longer; the source message has it all.
    assert _notice(logs)["event"] == (detail if len(detail) <= LINE_WIDTH else detail[: LINE_WIDTH - 1] + "…")


def test_short_lived_reads_beyond_the_bulkhead_are_answered_busy_at_once() -> None:
    """
    At most ``max_concurrent_fallback_reads`` builds per worker; a read of another task is told so at once, not
    after ``slot_wait`` (that wait would hold an API request thread while a build takes seconds).
    """
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    settings = Settings(fallback_timeout=30.0, max_concurrent_fallback_reads=2, slot_wait=5.0, answer_ttl=1e-6)
    pipeline = ExecutorLogPipeline(settings=settings, helper=HELPER)
    release, started = threading.Event(), threading.Semaphore(0)

    def slow_build(resolved: Any, ti: Any, try_number: int, **_: Any) -> tuple[list[str], list[str]]:
        started.release()
        release.wait(30)
        return ["built"], [f"line of {ti.task_id}"]

    with (
        mock.patch("airflow_executor_logs.executors.log_pipeline.read_with_short_lived_executor", slow_build),
        ThreadPoolExecutor(2) as pool,
    ):
        running = [pool.submit(pipeline.read, fake_ti("CountingExecutor", task_id=f"t{n}"), 1) for n in range(2)]
        for _ in running:
            assert started.acquire(timeout=30)
        began = time.monotonic()
        messages, logs = pipeline.read(fake_ti("CountingExecutor", task_id="t9"), 1)
        took = time.monotonic() - began
        release.set()
        answers = [future.result(30) for future in running]
    assert took < 1.0
    assert "already building 2 short-lived executors ([executor_logs] max_concurrent_fallback_reads)" in messages[-1]
    assert "API worker busy (2 short-lived reads running)" in _notice(logs)["event"]
    assert [logs for _, logs in answers] == [["line of t0"], ["line of t1"]]
    assert pipeline.read(fake_ti("CountingExecutor", task_id="t9"), 1)[1] == ["line for t9 try 1"]


def test_an_exceptions_text_reaches_viewers_redacted_once() -> None:
    """A failed build's AWS AccessDenied: no account id or role ARN in the source message or the log line."""
    from tests.unit.executors.test_redaction import ACCESS_DENIED

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(ACCESS_DENIED)

    pipeline = ExecutorLogPipeline(settings=Settings(answer_ttl=1e-6))
    with mock.patch("airflow_executor_logs.executors.log_pipeline.read_with_short_lived_executor", denied):
        messages, logs = pipeline.read(fake_ti("CountingExecutor", task_id="denied"), 1)
    shown = "\n".join([*messages, *logs])
    assert "123456789012" not in shown
    assert "assumed-role" not in shown
    assert "(AccessDenied)" in messages[-1]
    assert "arn:aws:eks:eu-west-1:<account>:cluster/prod" in messages[-1]


def test_short_lived_reads_go_through_the_helper_the_pipeline_holds() -> None:
    """The helper is a seam: a pipeline reads through the one it is given, with the read's Deadline."""
    from airflow_executor_logs.executors.resilience.deadline import Deadline
    from airflow_executor_logs.utils.zygote import Zygote

    deadlines: list[Deadline] = []

    class Recording(Zygote):
        def call(self, fn: Any, *, deadline: Deadline, **kwargs: Any) -> Any:
            deadlines.append(deadline)
            return HELPER.call(fn, deadline=deadline, **kwargs)

    pipeline = ExecutorLogPipeline(settings=Settings(fallback_timeout=10.0, answer_ttl=1e-6), helper=Recording())
    assert pipeline.read(fake_ti("CountingExecutor", task_id="seam"), 1)[1] == ["line for seam try 1"]
    assert [deadline.seconds for deadline in deadlines] == [10.0]
    assert ExecutorLogPipeline().helper is not ExecutorLogPipeline().helper  # each builds its own by default
