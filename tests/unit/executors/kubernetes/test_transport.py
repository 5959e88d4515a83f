"""The HTTP side of a read: the body in line batches under the deadline, failures described."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import urllib3

from airflow_executor_logs.executors.kubernetes.transport import (
    body,
    describe,
    is_timeout,
    is_transport_failure,
    line_batches_until,
)
from airflow_executor_logs.executors.resilience.deadline import Deadline, ReadDeadlineExceeded
from airflow_executor_logs_testing.kube_client import FakeClock, api_exception
from tests.support.kube_double import refused


class RecordingSocket(socket.socket):
    """A real (unconnected) socket that remembers the timeouts it was given."""

    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.timeouts: list[float | None] = []

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)
        super().settimeout(value)


class Response:
    """The part of urllib3's HTTPResponse the transport uses; each read takes ``takes`` s of ``clock``."""

    def __init__(
        self,
        chunks: list[bytes],
        *,
        chunked: bool = False,
        clock: FakeClock | None = None,
        takes: float = 0.0,
        sock: socket.socket | None = None,
    ) -> None:
        self._chunks = list(chunks)
        self.chunked = chunked
        self._clock, self._takes = clock, takes
        self.connection = SimpleNamespace(sock=sock)
        self.reads: list[str] = []
        self.ended: list[str] = []

    def supports_chunked_reads(self) -> bool:
        return True

    def read_chunked(self, amount: int, decode_content: bool) -> Iterator[bytes]:
        self.reads.append(f"read_chunked({amount}, decode_content={decode_content})")
        while self._chunks:
            yield self._next()

    def read1(self, amount: int) -> bytes:
        self.reads.append(f"read1({amount})")
        return self._next() if self._chunks else b""

    def read(self, amount: int) -> bytes:
        raise AssertionError("read1 is there: read() would wait for the whole amount")

    def _next(self) -> bytes:
        if self._clock is not None:
            self._clock.advance(self._takes)
        return self._chunks.pop(0)

    def release_conn(self) -> None:
        self.ended.append("release_conn")

    def close(self) -> None:
        self.ended.append("close")


def test_the_body_is_split_into_lines_a_batch_per_chunk_newlines_kept() -> None:
    response = Response([b"one\ntw", b"o\nthree\nfo", b"ur"])
    assert list(line_batches_until(response, Deadline(5))) == [[b"one\n"], [b"two\n", b"three\n"], [b"four"]]


def test_a_chunk_without_a_newline_yields_no_empty_batch() -> None:
    response = Response([b"a lo", b"ng line", b"\n"])
    assert list(line_batches_until(response, Deadline(5))) == [[b"a long line\n"]]


def test_a_chunked_body_is_read_chunk_by_chunk_decoded() -> None:
    response = Response([b"a\n", b"b\n"], chunked=True)
    assert list(line_batches_until(response, Deadline(5))) == [[b"a\n"], [b"b\n"]]
    assert response.reads == ["read_chunked(65536, decode_content=True)"]


def test_a_plain_body_is_read_with_read1_until_it_is_empty() -> None:
    response = Response([b"a\n", b"b\n"])
    list(line_batches_until(response, Deadline(5)))
    assert response.reads == ["read1(65536)", "read1(65536)", "read1(65536)"]


def test_the_socket_timeout_is_cut_to_what_is_left_before_every_read() -> None:
    clock = FakeClock()
    with RecordingSocket() as sock:
        response = Response([b"a\n", b"b\n", b"c\n"], clock=clock, takes=1.5, sock=sock)
        assert len(list(line_batches_until(response, Deadline(5.0, clock)))) == 3
    assert sock.timeouts == [5.0, 3.5, 2.0, 0.5]


def test_the_deadline_passing_mid_body_raises_and_drops_the_connection() -> None:
    clock = FakeClock()
    response = Response([b"a\n", b"b\n", b"c\n"], clock=clock, takes=2.0)
    batches = body(response, Deadline(3.0, clock))
    assert next(batches) == [b"a\n"]
    assert next(batches) == [b"b\n"]
    with pytest.raises(ReadDeadlineExceeded):
        next(batches)
    assert response.ended == ["close"]


def test_a_body_read_to_its_end_gives_its_connection_back_to_the_pool() -> None:
    response = Response([b"a\n", b"b"])
    assert list(body(response, Deadline(5))) == [[b"a\n"], [b"b"]]
    assert response.ended == ["release_conn"]


def test_a_body_closed_early_drops_its_connection() -> None:
    response = Response([b"a\n", b"b\n"])
    batches = body(response, Deadline(5))
    assert next(batches) == [b"a\n"]
    batches.close()
    assert response.ended == ["close"]


def _read_timed_out() -> BaseException:
    reason = urllib3.exceptions.ReadTimeoutError(None, "/api/v1/pods", "Read timed out. (read timeout=2)")  # type: ignore[arg-type]
    return urllib3.exceptions.MaxRetryError(None, "/api/v1/pods", reason=reason)  # type: ignore[arg-type]


def _caused_by(cause: BaseException) -> BaseException:
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as err:
        return err


def _cycle() -> BaseException:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    return first


@pytest.mark.parametrize(
    ("error", "timeout", "transport"),
    [
        (TimeoutError(), True, True),
        (ReadDeadlineExceeded(5), True, True),
        (_read_timed_out(), True, True),  # through MaxRetryError.reason
        (_caused_by(TimeoutError()), True, True),  # through __cause__
        (refused(), False, True),
        (ConnectionResetError(), False, True),
        (urllib3.exceptions.ProtocolError("Connection aborted."), False, True),
        (_caused_by(ConnectionRefusedError()), False, True),
        (api_exception(500, "etcd is down"), False, False),  # the API answered
        (ValueError("bad body"), False, False),
        (_cycle(), False, False),  # a cause cycle ends the walk
    ],
    ids=[
        "TimeoutError",
        "deadline",
        "urllib3-read-timeout",
        "caused-by-timeout",
        "refused",
        "reset",
        "protocol-error",
        "caused-by-refused",
        "api-error",
        "value-error",
        "cause-cycle",
    ],
)
def test_failures_are_classified(error: BaseException, timeout: bool, transport: bool) -> None:
    assert (is_timeout(error), is_transport_failure(error)) == (timeout, transport)


def test_an_error_status_is_described_with_the_apis_own_message() -> None:
    error = api_exception(403, 'pods is forbidden: User "system:anonymous" cannot list pods')
    assert describe(error, None) == '(403) Forbidden: pods is forbidden: User "system:anonymous" cannot list pods'


@pytest.mark.parametrize("status_body", [None, "", "<html>bad gateway</html>", "[1, 2]", '{"message": ""}'])
def test_an_error_status_without_a_status_message_is_its_code_and_reason(status_body: str | None) -> None:
    error = api_exception(500)
    error.body = status_body  # type: ignore[attr-defined]
    assert describe(error, None) == "(500) Internal Server Error"


def test_credentials_of_the_client_never_reach_the_message() -> None:
    configuration = SimpleNamespace(
        api_key={"authorization": "Bearer s3cret-token"},
        password="hunter22",
        cert_file="/etc/k8s/client.crt",
        key_file=None,
    )
    api = SimpleNamespace(api_client=SimpleNamespace(configuration=configuration))
    error = RuntimeError(
        "request with Bearer s3cret-token failed; raw s3cret-token, password hunter22, cert /etc/k8s/client.crt"
    )
    assert describe(error, api) == (
        "request with [redacted] failed; raw [redacted], password [redacted], cert [redacted]"
    )


def test_secrets_shorter_than_four_characters_are_left_alone() -> None:
    configuration = SimpleNamespace(api_key={"authorization": "abc"}, password=None, cert_file=None, key_file=None)
    api = SimpleNamespace(api_client=SimpleNamespace(configuration=configuration))
    assert describe(RuntimeError("abc abcd"), api) == "abc abcd"


def test_a_client_without_a_configuration_describes_the_error_as_is() -> None:
    assert describe(RuntimeError("boom"), SimpleNamespace()) == "boom"
    assert describe(RuntimeError("boom"), None) == "boom"
