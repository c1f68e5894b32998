"""A circuit breaker in front of ClickHouse: once it has failed to answer, requests fail at
once (503 with ``Retry-After``) instead of each waiting for its own timeout, until a probe or
one trial request finds it back.

Closed: everything goes through. Open (after a transport failure): callers get the last
failure at once; after ``cooldown`` seconds exactly one caller is let through as a trial
while the others keep failing fast. The trial's outcome closes or re-opens the circuit.
(Changes of state are logged by the warehouse's health tracker, once each.)
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol


class Failure(Protocol):
    """What the breaker remembers of a failure: it can be raised again, fresh, with the
    seconds after which a retry makes sense."""

    message: str

    def again(self, retry_after: int) -> Exception: ...


class Circuit:
    def __init__(self, name: str, cooldown: float = 2.0) -> None:
        self.name = name
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._failure: Failure | None = None
        self._retry_at = 0.0
        self._trial = False

    @property
    def failure(self) -> Failure | None:
        """The failure that opened the circuit, or None while it is closed."""
        return self._failure

    def retry_after(self) -> int:
        """Whole seconds until the next trial (at least 1)."""
        return max(1, math.ceil(self._retry_at - time.monotonic()))

    def enter(self) -> bool:
        """Let a call through (True: it is the trial of an open circuit) or raise the last
        failure at once."""
        with self._lock:
            failure = self._failure
            if failure is None:
                return False
            if self._trial or time.monotonic() < self._retry_at:
                raise failure.again(self.retry_after())
            self._trial = True
            return True

    def leave(self, trial: bool) -> None:
        """The call ended without telling anything about the warehouse (e.g. no free client)."""
        if trial:
            with self._lock:
                self._trial = False

    def failed(self, failure: Failure) -> None:
        with self._lock:
            self._failure = failure
            self._retry_at = time.monotonic() + self.cooldown
            self._trial = False

    def succeeded(self) -> None:
        if self._failure is None:  # the common case, without taking the lock
            return
        with self._lock:
            self._failure = None
            self._trial = False
