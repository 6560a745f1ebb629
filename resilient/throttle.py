"""A throttle gate: one 429 makes every caller behind the gate hold back.

Retrying each rate-limited call on its own leaves every *other* in-flight
caller to find the limit by collecting its own 429. A :class:`ThrottleGate`
shared by many functions turns the first 429 into pre-emptive backoff for all
of them: every call through the gate waits until the gate opens again before
sending. Consecutive throttles escalate the closed period 1, 2, 4, 8, 16, 32 s
(capped at ``max_wait``); a success, or ``reset_after`` seconds without a
throttle, starts the escalation again from ``base_wait``. A server's
Retry-After hint longer than the escalation step is honoured instead, unless
``@backoff`` would not wait that long itself (above its ``max_retry_after``,
or with ``respect_retry_after`` off): then the escalation step alone closes
the gate, and a caller that finds the gate closed for longer than its own
``max_retry_after`` gives up at once rather than sleep.

The mutable part lives in a :class:`GateState` with three atomic operations,
so a shared (Redis) state can replace the in-memory one without touching the
gate's logic.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from . import clock as _clock
from .policy import Policy, positive_float

__all__ = ["ThrottleGate", "ThrottleGatePolicy", "GateState", "MemoryGateState"]


class ThrottleGatePolicy(Policy):
    _fields = {
        "base_wait": (1.0, positive_float),
        "max_wait": (32.0, positive_float),
        "reset_after": (60.0, positive_float),
    }

    base_wait: float
    max_wait: float
    reset_after: float

    def _check_together(self, values: dict[str, Any]) -> None:
        if values["base_wait"] > values["max_wait"]:
            raise ValueError(
                f"base_wait must be <= max_wait (the cap of the escalation), got {values['base_wait']!r} > {values['max_wait']!r}"
            )


class GateState(Protocol):
    """The gate's shared state; each method is one atomic step."""

    def closed_until(self) -> float:
        """Clock time before which no call may be sent."""

    def throttled(self, now: float, hint: float | None, policy: ThrottleGatePolicy) -> float:
        """Record a throttle at ``now``; returns the new ``closed_until``."""

    def succeeded(self) -> None:
        """Record a success: the next throttle starts from ``base_wait`` again."""


class MemoryGateState:
    """:class:`GateState` for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = float("-inf")
        self._level = 0
        self._last_throttle = float("-inf")

    def closed_until(self) -> float:
        return self._until

    def throttled(self, now: float, hint: float | None, policy: ThrottleGatePolicy) -> float:
        with self._lock:
            if now - self._last_throttle > policy.reset_after:
                self._level = 0
            wait = min(policy.max_wait, policy.base_wait * 2.0**self._level)
            if hint is not None and hint > wait:
                wait = hint
            self._level += 1
            self._last_throttle = now
            self._until = max(self._until, now + wait)
            return self._until

    def succeeded(self) -> None:
        if self._level:
            with self._lock:
                self._level = 0

    @property
    def level(self) -> int:
        return self._level


class ThrottleGate:
    """Pre-emptive backoff shared by every function that passes ``gate=`` to ``@backoff``."""

    def __init__(
        self,
        *,
        base_wait: float = 1.0,
        max_wait: float = 32.0,
        reset_after: float = 60.0,
        state: GateState | None = None,
        clock: _clock.Clock | None = None,
    ) -> None:
        self.policy = ThrottleGatePolicy(base_wait=base_wait, max_wait=max_wait, reset_after=reset_after)
        self._state: GateState = state if state is not None else MemoryGateState()
        self._clock = clock
        self._lock = threading.Lock()
        self.throttles = 0
        self.waits = 0
        self.waited = 0.0

    # ``now`` is passed by the caller (``@backoff`` reads its own clock) so that
    # the gate and the layer using it agree on time; standalone use reads the
    # gate's clock.

    def wait_time(self, now: float | None = None) -> float:
        """Seconds a call must wait before sending at ``now`` (0 when the gate is open)."""
        if now is None:
            now = _clock.resolve(self._clock).monotonic()
        return _clock.until(self._state.closed_until(), now)  # waiting exactly this long finds the gate open

    def record_throttle(self, hint: float | None = None, now: float | None = None) -> None:
        """A call through the gate was rate limited (``hint``: the server's Retry-After)."""
        if now is None:
            now = _clock.resolve(self._clock).monotonic()
        self._state.throttled(now, hint, self.policy)
        with self._lock:
            self.throttles += 1

    def record_success(self) -> None:
        self._state.succeeded()

    def record_wait(self, seconds: float) -> None:
        with self._lock:
            self.waits += 1
            self.waited += seconds

    def stats(self) -> dict[str, Any]:
        return {
            "throttles": self.throttles,
            "waits": self.waits,
            "waited_seconds": self.waited,
            "closed_for": self.wait_time(),
        }

    def __repr__(self) -> str:
        return f"ThrottleGate(closed_for={self.wait_time():.3g}s, throttles={self.throttles})"
