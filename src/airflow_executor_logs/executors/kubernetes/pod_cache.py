"""
Which pod serves a task's (cluster, namespace, selector): remembered, so that a steady read of a
running task's log is one Kubernetes call (the log) instead of two (a pod list, then the log).

Per process, bounded (least recently used first out) and with a time to live. The reader drops an
entry and lists again when the pod is gone (404).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["PodCache"]


class PodCache:
    """Pod names by key; thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._names: OrderedDict[Hashable, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, ttl: float) -> str | None:
        """The pod remembered for ``key`` within the last ``ttl`` seconds."""
        with self._lock:
            hit = self._names.get(key)
            if hit is None:
                return None
            if self._clock() - hit[1] >= ttl:
                del self._names[key]
                return None
            self._names.move_to_end(key)
            return hit[0]

    def put(self, key: Hashable, name: str, size: int) -> None:
        """Remember ``name`` for ``key``, keeping at most ``size`` entries."""
        with self._lock:
            self._names[key] = (name, self._clock())
            self._names.move_to_end(key)
            while len(self._names) > size:
                self._names.popitem(last=False)

    def drop(self, key: Hashable, name: str) -> None:
        """Forget ``key`` if it still names ``name``."""
        with self._lock:
            hit = self._names.get(key)
            if hit is not None and hit[0] == name:
                del self._names[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)
