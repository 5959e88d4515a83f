"""
A circuit breaker per remote API (one Kubernetes cluster, for instance): fail fast while it is down.

After ``threshold`` consecutive transport failures (timeouts, refused or reset connections) the
breaker opens: reads are refused at once, with a message saying what failed and when the next attempt
is. After ``cooldown`` seconds one probe read is let through (half-open); its success closes the
breaker, its failure opens it again. Any answer from the API, an error status included, is a success:
the transport works.

So that a recovered API is read again on the next poll, not after the whole cool-down, a read refused by
an open breaker may bring a cheap probe call (``probe``): it runs in the background, at most one per
circuit at a time and one every :data:`PROBE_EVERY` seconds, and only while reads keep coming (nobody
looking, no calls). Its success closes the breaker; the read that started it waits up to ``probe_wait``
for it, so that read already gets the fresh answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["PROBE_EVERY", "BreakerPermit", "CircuitBreakers", "Refusal"]

#: Seconds between background probes of one open circuit (each is bounded by its own timeouts).
PROBE_EVERY = 1.0


class Refusal(str):
    """Why a read is refused now (the message), with the count of failures and the seconds to the next attempt."""

    failures: int
    retry_in: float | None

    def __new__(cls, message: str, failures: int, retry_in: float | None) -> Refusal:
        refusal = super().__new__(cls, message)
        refusal.failures, refusal.retry_in = failures, retry_in
        return refusal


@dataclass
class _Circuit:
    failures: int = 0
    last_error: str = ""
    opened_at: float | None = None
    probing: bool = False
    cooldown: float = 0.0
    probe_running: threading.Event | None = None  # set once the background probe in flight is done
    probe_started: float | None = None


@dataclass(eq=False)
class BreakerPermit:
    """Leave to call one API; say how it went with :meth:`succeeded` or :meth:`failed`, then :meth:`done`."""

    breakers: CircuitBreakers = field(repr=False)
    key: Hashable
    probe: bool
    threshold: int
    _settled: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _settle(self) -> bool:
        """Whether this call settles the permit (the first one does)."""
        with self._lock:
            first, self._settled = not self._settled, True
            return first

    def succeeded(self) -> None:
        """The API answered (an error status counts): close the circuit."""
        if self._settle():
            self.breakers._succeeded(self.key, self.probe)

    def failed(self, error: str) -> bool:
        """A transport failure: count it, opening the circuit at the threshold. Whether it opened now."""
        if not self._settle():
            return False
        return self.breakers._failed(self.key, self.probe, self.threshold, error)

    def done(self) -> None:
        """The read ended without reaching the API (a bad setting, say): a probe slot is freed."""
        if self._settle():
            self.breakers._released(self.key, self.probe)


class CircuitBreakers:
    """One circuit per key; thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._circuits: dict[Hashable, _Circuit] = {}
        self._lock = threading.Lock()

    def admit(
        self,
        key: Hashable,
        *,
        threshold: int,
        cooldown: float,
        probe: Callable[[], None] | None = None,
        probe_wait: float = 0.0,
    ) -> BreakerPermit | Refusal:
        """
        A permit for one read, or the message explaining why the read is refused now. While the circuit
        is open, ``probe`` (a cheap call that raises if the API still fails) may be started in the
        background; a read that starts it waits up to ``probe_wait`` s and is let through if it succeeds.
        """
        started = self._start_probe(key, probe)
        if started is not None:
            started.wait(probe_wait)  # if it succeeds in time, the circuit is closed below
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            circuit.cooldown = cooldown
            if circuit.opened_at is None:
                return BreakerPermit(self, key, probe=False, threshold=threshold)
            waited = self._clock() - circuit.opened_at
            if waited >= cooldown and not circuit.probing:
                circuit.probing = True
                return BreakerPermit(self, key, probe=True, threshold=threshold)
            reason = (
                f"the Kubernetes API failed {circuit.failures} times in a row, last {waited:.0f} s ago "
                f"({circuit.last_error})"
            )
            if circuit.probing:
                return Refusal(f"{reason}; a probe read is checking it now", circuit.failures, None)
            left = cooldown - waited
            message = f"{reason}; next attempt in {left:.0f} s ([executor_logs] breaker_cooldown)"
            if probe is not None:  # probed in the background: a read after a good probe goes through
                since = self._clock() - (circuit.probe_started or 0.0)
                left = min(left, max(PROBE_EVERY - since, 0.0))
            return Refusal(message, circuit.failures, left)

    def _start_probe(self, key: Hashable, probe: Callable[[], None] | None) -> threading.Event | None:
        """Start ``probe`` for the open circuit of ``key`` if none runs and none started recently."""
        if probe is None:
            return None
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.opened_at is None or circuit.probing or circuit.probe_running is not None:
                return None
            now = self._clock()
            if circuit.probe_started is not None and now - circuit.probe_started < PROBE_EVERY:
                return None
            done = circuit.probe_running = threading.Event()
            circuit.probe_started = now
        threading.Thread(
            target=self._probe, args=(key, probe, circuit, done), name="executor-logs-breaker-probe", daemon=True
        ).start()
        return done

    def _probe(self, key: Hashable, probe: Callable[[], None], circuit: _Circuit, done: threading.Event) -> None:
        try:
            probe()
        except Exception:  # still failing: the circuit stays open, with the error that opened it
            pass
        else:
            with self._lock:
                if self._circuits.get(key) is circuit:
                    self._circuits[key] = _Circuit()  # the API answers: closed
        finally:
            with self._lock:
                circuit.probe_running = None
            done.set()

    def retry_in(self, key: Hashable) -> float | None:
        """Seconds until an open circuit lets a read through again; ``None`` while it is closed."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.opened_at is None:
                return None
            return max(circuit.cooldown - (self._clock() - circuit.opened_at), 0.0)

    def state(self, key: Hashable) -> str:
        """``closed``, ``open`` or ``half-open`` (a probe is out), for tests and diagnostics."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or circuit.opened_at is None:
                return "closed"
            return "half-open" if circuit.probing else "open"

    def _succeeded(self, key: Hashable, probe: bool) -> None:
        with self._lock:
            self._circuits[key] = _Circuit()

    def _failed(self, key: Hashable, probe: bool, threshold: int, error: str) -> bool:
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            circuit.failures += 1
            circuit.last_error = error
            opened = probe or (circuit.opened_at is None and circuit.failures >= threshold)
            if opened:
                circuit.opened_at = self._clock()
            if probe:
                circuit.probing = False
        return opened

    def _released(self, key: Hashable, probe: bool) -> None:
        if probe:
            with self._lock:
                self._circuits[key].probing = False
