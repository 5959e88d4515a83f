"""The loopback-only admin API of the fake Kubernetes API server, declared once.

A call is ``POST /_fake/<method>`` whose JSON body holds the keyword arguments of that
:class:`~airflow_executor_logs_testing.kube_api.api.FakeKubeAPI` method; the answer is ``{"result": ...}``
or a Kubernetes ``Status`` body. The server dispatches from :data:`ADMIN_METHODS`, and a client in another
process takes each method's signature and docstring from ``FakeKubeAPI`` itself with :class:`remote`.
"""

from __future__ import annotations

import inspect
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from airflow_executor_logs_testing.kube_api.faults import Fault, RecordedRequest, status_body

__all__ = ["ADMIN_METHODS", "ADMIN_PREFIX", "AdminClient", "call_remote", "dispatch", "remote"]

ADMIN_PREFIX = "/_fake/"
#: The ``FakeKubeAPI`` methods another process may call.
ADMIN_METHODS: frozenset[str] = frozenset(
    {
        "add_pod",
        "append_logs",
        "remove_pod",
        "clear_pods",
        "inject",
        "clear_faults",
        "heal",
        "recorded_requests",
        "clear_requests",
        "stats",
        "set_token",
        "deny",
        "allow_all",
    }
)

P = ParamSpec("P")
R = TypeVar("R")

_FAULT, _REQUEST = "__fault__", "__recorded_request__"  # not valid label keys, so never confused with labels
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def encode(value: Any) -> Any:
    """JSON-ready form of an argument or result (faults and recorded requests tagged)."""
    if isinstance(value, Fault):
        return {_FAULT: value.to_dict()}
    if isinstance(value, RecordedRequest):
        return {_REQUEST: value.to_dict()}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, dict):
        if value.keys() == {_FAULT}:
            return Fault.from_dict(value[_FAULT])
        if value.keys() == {_REQUEST}:
            return RecordedRequest(**value[_REQUEST])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def dispatch(api: object, http_method: str, name: str, body: bytes) -> tuple[int, Any]:
    """Run one admin call on ``api``; return the HTTP status and the JSON body to answer with."""
    if name not in ADMIN_METHODS:
        return 404, status_body(404, f"no admin method {name!r}; known: {sorted(ADMIN_METHODS)}")
    if http_method != "POST":
        return 405, status_body(405, f"admin method {name!r} takes POST, not {http_method}")
    try:
        arguments = decode(json.loads(body)) if body else {}
        if not isinstance(arguments, dict):
            raise TypeError("the body must be a JSON object of keyword arguments")
        result = getattr(api, name)(**arguments)
    except KeyError as exc:
        return 404, status_body(404, f"not found: {exc}")
    except (TypeError, ValueError) as exc:
        return 400, status_body(400, str(exc))
    return 200, {"result": encode(result)}


def call_remote(base_url: str, name: str, arguments: dict[str, Any], *, timeout: float = 10.0) -> Any:
    """Call admin method ``name`` of the server at ``base_url``; ``RuntimeError`` when it refuses."""
    data = json.dumps(encode(arguments)).encode()
    request = urllib.request.Request(base_url + ADMIN_PREFIX + name, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return decode(json.loads(response.read())["result"])
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"{name} failed with {exc.code}: {detail}") from None


class AdminClient(Protocol):
    """Whatever can reach a server's admin API (``FakeKubeProcess``)."""

    def admin_call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call one admin method with keyword ``arguments``."""


class remote(Generic[P, R]):
    """A ``FakeKubeAPI`` method called through the admin API: same signature, same docstring."""

    def __init__(self, method: Callable[Concatenate[Any, P], R]) -> None:
        if method.__name__ not in ADMIN_METHODS:
            raise ValueError(f"{method.__name__} is not an admin method")
        self.name = method.__name__
        self.signature = inspect.signature(method)
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, instance: None, owner: type) -> remote[P, R]: ...

    @overload
    def __get__(self, instance: AdminClient, owner: type) -> Callable[P, R]: ...

    def __get__(self, instance: AdminClient | None, owner: type) -> remote[P, R] | Callable[P, R]:
        if instance is None:
            return self
        client = instance

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = self.signature.bind(client, *args, **kwargs)
            arguments = dict(list(bound.arguments.items())[1:])  # without self
            result: R = client.admin_call(self.name, arguments)
            return result

        call.__name__ = call.__qualname__ = self.name
        call.__doc__ = self.__doc__
        return call
