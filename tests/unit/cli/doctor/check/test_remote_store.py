"""The remote-store check against stores on 127.0.0.1: answering, refusing, and accepting without answering."""

from __future__ import annotations

import time
from dataclasses import dataclass

from airflow_executor_logs.cli.doctor.check.remote_store import check_remote_store, store_address
from tests.support.remote_store import answering_store, hanging_store, refusing_port


@dataclass
class ElasticsearchRemoteLogIO:
    host: str
    port: int | None = None


def test_the_address_of_a_store_url_or_host_and_port() -> None:
    assert store_address(ElasticsearchRemoteLogIO("https://es.example:9243,https://es2")) == (
        "https",
        "es.example",
        9243,
    )
    assert store_address(ElasticsearchRemoteLogIO("127.0.0.1", 9201)) == ("http", "127.0.0.1", 9201)
    assert store_address(ElasticsearchRemoteLogIO("http://es.example")) == ("http", "es.example", 9200)
    assert store_address(object()) is None  # S3, GCS: no host to ask
    assert check_remote_store(object(), 0.5) is None


def test_a_store_that_answers_is_ok() -> None:
    with answering_store() as port:
        result = check_remote_store(ElasticsearchRemoteLogIO(f"http://127.0.0.1:{port}"), 1.0)
    assert result is not None
    assert (result.check, result.subject, result.status) == ("remote-store", "ElasticsearchRemoteLogIO", "ok")


def test_a_store_that_refuses_fails_with_the_fix() -> None:
    result = check_remote_store(ElasticsearchRemoteLogIO("127.0.0.1", refusing_port()), 1.0)
    assert result is not None
    assert result.status == "fail"
    assert "cannot be reached: ConnectionRefusedError" in result.summary
    assert result.fix is not None
    assert "remote_read_timeout" in result.fix


def test_a_store_that_never_answers_fails_within_connect_timeout() -> None:
    with hanging_store() as port:
        started = time.monotonic()
        result = check_remote_store(ElasticsearchRemoteLogIO("127.0.0.1", port), 0.5)
        took = time.monotonic() - started
    assert result is not None
    assert result.status == "fail"
    assert result.summary.endswith("does not answer within 0.5 s ([executor_logs] connect_timeout)")
    assert 0.45 <= took < 2 * 0.5 + 2.0, took
