"""``Lifecycle`` (``lifecycle``): start returns the service, and the with-block stops it on every way out."""

from __future__ import annotations

import pytest

from airflow_executor_logs_testing.lifecycle import Lifecycle


class Service(Lifecycle):
    """Records what happened to it; ``fail_start`` makes ``start()`` raise after it began."""

    def __init__(self, fail_start: BaseException | None = None) -> None:
        self.fail_start = fail_start
        self.events: list[str] = []

    def start(self) -> Service:
        self.events.append("start")
        if self.fail_start is not None:
            raise self.fail_start
        return self

    def stop(self) -> None:
        self.events.append("stop")


def test_the_with_block_gets_the_started_service_and_stops_it_once() -> None:
    service = Service()
    with service as entered:
        assert entered is service
        assert service.events == ["start"]
    assert service.events == ["start", "stop"]


def test_an_error_in_the_block_stops_it_and_propagates() -> None:
    service = Service()
    with pytest.raises(KeyError, match="in the block"), service:
        raise KeyError("in the block")
    assert service.events == ["start", "stop"]


@pytest.mark.parametrize("error", [RuntimeError("half started"), KeyboardInterrupt()])
def test_a_failed_start_is_stopped_once_and_the_block_never_runs(error: BaseException) -> None:
    service = Service(fail_start=error)
    ran = False
    with pytest.raises(type(error)), service:
        ran = True
    assert (ran, service.events) == (False, ["start", "stop"])


def test_the_base_declares_start_and_stop_only() -> None:
    with pytest.raises(NotImplementedError):
        Lifecycle().start()
    with pytest.raises(NotImplementedError):
        Lifecycle().stop()


def test_every_service_of_the_kit_is_a_lifecycle() -> None:
    from airflow_executor_logs_testing import FakeKubeAPI, FakeKubeProcess
    from tests.support.postgres import PostgresCluster
    from tests.support.sandbox import AirflowSandbox, ApiServer

    services = (FakeKubeAPI, FakeKubeProcess, PostgresCluster, AirflowSandbox, ApiServer)
    assert [cls.__name__ for cls in services if not issubclass(cls, Lifecycle)] == []
