"""The switchable store: one port that refuses, then answers or hangs, as told."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from tests.support.remote_store import switchable_store


def test_one_port_refuses_then_answers_then_hangs_and_never_refuses_again() -> None:
    with switchable_store() as store:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", store.port), timeout=2).close()
        store.become("answering")
        for _ in range(2):
            with urllib.request.urlopen(f"http://127.0.0.1:{store.port}/_search", data=b"{}", timeout=5) as answer:
                assert b'"hits"' in answer.read()
        store.become("hanging")
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(f"http://127.0.0.1:{store.port}/_search", timeout=0.5)
        with pytest.raises(ValueError, match="refusing comes first"):
            store.become("refusing")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", store.port), timeout=2).close()
