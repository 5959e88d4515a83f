"""
An in-process stand-in for the ``kubernetes`` client's ``CoreV1Api``, for unit tests (like httpx's
``MockTransport``): no socket, no thread, no sleep.

Plug it into the reader's client seam, ``KubeClientCache(factory=lambda team: double)``. It answers
``list_namespaced_pod`` and ``read_namespaced_pod_log`` (``_preload_content=False`` gives a streamed
response shaped like urllib3's) from in-memory pods, counts calls, and can fail a call, hold it until
the test releases it, or advance an injected clock as if the call took time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from airflow_executor_logs import KubeCoreApi, PodList, PodLogResponse

__all__ = ["Call", "FakeClock", "KubeClientDouble", "api_exception"]

#: Seconds a held call waits for its release at most, so that a failing test cannot hang the run.
HOLD_LIMIT = 30.0


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    lines: list[str]


@dataclass
class _Fault:
    error: BaseException | None = None
    takes: float = 0.0
    gate: threading.Event | None = None
    times: int | None = 1


@dataclass
class Call:
    """One recorded call: which route, and its main arguments."""

    route: str
    namespace: str
    name: str | None = None
    selector: str | None = None
    tail_lines: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class KubeClientDouble:
    """``CoreV1Api`` answering from in-memory pods. Thread-safe."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.calls: list[Call] = []
        self.open_responses = 0
        self.api_client = SimpleNamespace(configuration=None)
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ pods and faults

    def add_pod(self, name: str, labels: dict[str, str], lines: list[str], namespace: str = "default") -> None:
        """Add (or replace) a pod whose ``base`` container logged ``lines``."""
        with self._lock:
            self._pods[(namespace, name)] = _Pod(name, namespace, dict(labels), list(lines))

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        with self._lock:
            del self._pods[(namespace, name)]

    def fail(self, route: str, error: BaseException, *, times: int | None = 1) -> None:
        """Raise ``error`` on the next ``times`` calls of ``route`` (``list`` or ``log``; ``None``: always)."""
        self._add_fault(route, _Fault(error=error, times=times))

    def slow(self, route: str, seconds: float, *, times: int | None = 1) -> None:
        """Advance the injected clock by ``seconds`` during the next calls of ``route``."""
        if self.clock is None:
            raise ValueError("slow() needs a FakeClock")
        self._add_fault(route, _Fault(takes=seconds, times=times))

    def hold(self, route: str, *, times: int | None = 1) -> threading.Event:
        """Block the next calls of ``route`` until the returned event is set."""
        gate = threading.Event()
        self._add_fault(route, _Fault(gate=gate, times=times))
        return gate

    def count(self, route: str | None = None) -> int:
        """Calls made, of one route or of all."""
        with self._lock:
            return sum(1 for call in self.calls if route is None or call.route == route)

    # ------------------------------------------------------------------ the CoreV1Api surface

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", **kwargs: Any) -> PodList:
        from kubernetes.client import V1ObjectMeta, V1Pod, V1PodList

        from airflow_executor_logs_testing.kube_api import parse_label_selector

        self._called(Call("list", namespace, selector=label_selector, extra=kwargs))
        selector = parse_label_selector(label_selector)
        with self._lock:
            pods = [pod for (ns, _), pod in sorted(self._pods.items()) if ns == namespace]
        items = [
            V1Pod(metadata=V1ObjectMeta(name=pod.name, namespace=pod.namespace, labels=dict(pod.labels)))
            for pod in pods
            if selector.matches(pod.labels)
        ]
        return V1PodList(items=items)

    def read_namespaced_pod_log(
        self, name: str, namespace: str, container: str = "base", tail_lines: int | None = None, **kwargs: Any
    ) -> Any:
        self._called(Call("log", namespace, name=name, tail_lines=tail_lines, extra=kwargs))
        with self._lock:
            pod = self._pods.get((namespace, name))
            lines = None if pod is None else list(pod.lines)
        if lines is None:
            raise api_exception(404, f'pods "{name}" not found')
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        body = "".join(f"{line}\n" for line in lines).encode()
        if kwargs.get("_preload_content", True):
            return body.decode()
        with self._lock:
            self.open_responses += 1
        return _StreamedResponse(body, self._response_ended)

    # ------------------------------------------------------------------ internals

    def _add_fault(self, route: str, fault: _Fault) -> None:
        with self._lock:
            self._faults.setdefault(route, []).append(fault)

    def _called(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            queue = self._faults.get(call.route) or []
            fault = queue[0] if queue else None
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
        if fault is None:
            return
        if fault.gate is not None and not fault.gate.wait(HOLD_LIMIT):
            raise TimeoutError(f"a held {call.route} call was not released within {HOLD_LIMIT:g} s")
        if fault.takes and self.clock is not None:
            limit = _read_timeout(call.extra.get("_request_timeout"))
            if limit is not None and fault.takes > limit:  # the client's socket timeout fires first
                import urllib3

                self.clock.advance(limit)
                raise urllib3.exceptions.ReadTimeoutError(None, call.route, f"Read timed out. (read timeout={limit})")  # type: ignore[arg-type]
            self.clock.advance(fault.takes)
        if fault.error is not None:
            raise fault.error

    def _response_ended(self) -> None:
        with self._lock:
            self.open_responses -= 1


def _read_timeout(request_timeout: Any) -> float | None:
    if isinstance(request_timeout, tuple):
        return float(request_timeout[1])
    return None if request_timeout is None else float(request_timeout)


class _StreamedResponse:
    """The part of urllib3's ``HTTPResponse`` the reader uses: read in pieces, then release or close."""

    chunked = False
    connection = None

    def __init__(self, body: bytes, ended: Callable[[], None]) -> None:
        self._body = body
        self._position = 0
        self._ended: Callable[[], None] | None = ended

    def supports_chunked_reads(self) -> bool:
        return False

    def read(self, amount: int | None = None, /) -> bytes:
        end = len(self._body) if amount is None or amount < 0 else self._position + amount
        data = self._body[self._position : end]
        self._position += len(data)
        return data

    read1 = read

    def read_chunked(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        """The body in pieces of ``amt`` bytes (the double is never chunked; here for the contract)."""
        while data := self.read(amt or 65536):
            yield data

    def release_conn(self) -> None:
        self._end()

    def close(self) -> None:
        self._end()

    def _end(self) -> None:
        ended, self._ended = self._ended, None
        if ended is not None:
            ended()


def api_exception(status: int, message: str = "") -> BaseException:
    """An ``ApiException`` as the client raises it for an error status, for :meth:`KubeClientDouble.fail`."""
    from kubernetes.client.rest import ApiException

    reasons = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
    error = ApiException(status=status, reason=reasons.get(status, "Error"))
    error.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return error


if TYPE_CHECKING:  # mypy checks the double against the contract the reader calls
    _client: KubeCoreApi = KubeClientDouble()
    _response: PodLogResponse = _StreamedResponse(b"", lambda: None)
