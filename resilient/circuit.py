"""``@circuit``: stop calling a provider that is down, and probe until it is back.

States: *closed* (calls go through; failures are counted), *open* (calls fail
at once with :class:`~resilient.errors.CircuitOpenError`, whose
``retry_after`` is the time left until a probe is allowed) and *half_open*
(up to ``half_open_max_calls`` probes go through; ``success_threshold``
successes close the circuit, one failure opens it again).

The circuit opens after ``fail_max`` consecutive failures or, when
``failure_rate`` is set, once at least ``min_calls`` of the last ``window``
calls were made and that share of them failed (a ``window`` smaller than
``min_calls`` counts as enough once full, as in resilience4j, so that tuning
one field at runtime never silently disables the rate check). Only provider faults count
(``classify`` kinds server, overloaded, timeout, connection): a rate limit
means the provider is up and only asks us to slow down, which is
``@backoff``'s and ``@multiplex``'s job; client errors (invalid, auth,
not_found) say nothing about the provider's health. Neither counts as a
failure nor resets the count.

What pybreaker provides and what this module adds
-------------------------------------------------
pybreaker (``pybreaker.CircuitBreaker``) holds the state: its storage keeps
the state name, the consecutive-failure counter, the half-open success
counter and the opening time (``CircuitMemoryStorage`` here; its
``CircuitRedisStorage`` is the way to share a breaker between processes),
and its ``open()``/``half_open()``/``close()`` transitions notify its
listeners. Any ``pybreaker.CircuitBreakerListener`` passed as ``listeners=``
sees our transitions.

pybreaker's own ``call()`` cannot be used as is: it holds a lock across the
guarded call, which serialises every concurrent caller; its ``call_async``
is Tornado-only; it reads ``datetime.now()`` so the open period cannot be
tested without sleeping; and it has no failure-rate window, no half-open
call limit, and no notion of which errors count. So this module decides the
transitions itself, holding its own lock only for the few instructions of
bookkeeping (never across the call), reads time from the toolkit clock, and
works for sync, async, generator and async generator functions: a stream's
outcome is recorded when it ends, a stream closed early by its consumer
counts as a success (it was answering), and a cancelled call counts as
neither.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pybreaker

from . import clock as _clock
from .errors import CircuitOpenError, NoKeyAvailableError, QueueFullError, QueueTimeoutError, classify
from .guard import guarded
from .layer import Layer, attach, check_target
from .policy import Policy, fraction, non_negative_float, optional, positive_int

__all__ = ["circuit", "Circuit", "CircuitPolicy", "CLOSED", "OPEN", "HALF_OPEN"]

logger = logging.getLogger("resilient.circuit")

F = TypeVar("F", bound=Callable[..., Any])

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
_FROM_PYBREAKER = {pybreaker.STATE_CLOSED: CLOSED, pybreaker.STATE_OPEN: OPEN, pybreaker.STATE_HALF_OPEN: HALF_OPEN}

_FAULT_KINDS = frozenset({"server", "overloaded", "timeout", "connection"})
# Our own local back-pressure says nothing about the provider's health.
_LOCAL_ERRORS = (QueueFullError, QueueTimeoutError, NoKeyAvailableError)


def provider_fault(exc: BaseException) -> bool:
    """The default ``is_failure``: the provider is down or broken (not: busy, or our mistake)."""
    if isinstance(exc, _LOCAL_ERRORS):
        return False
    return classify(exc).kind in _FAULT_KINDS


def _is_failure(name: str, value: Any) -> Any:
    if value is None:
        return provider_fault
    if callable(value) and not isinstance(value, type):
        return value
    types = value if isinstance(value, tuple) else (value,)
    if types and all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
        return lambda exc: isinstance(exc, types)
    raise ValueError(f"{name} must be None, an exception type, a tuple of them, or a predicate; got {value!r}")


class CircuitPolicy(Policy):
    """Configuration of a breaker; shared by every function the breaker guards."""

    _fields = {
        "fail_max": (5, positive_int),
        "reset_timeout": (30.0, non_negative_float),
        "success_threshold": (1, positive_int),
        "failure_rate": (None, optional(fraction)),
        "window": (20, positive_int),
        "min_calls": (10, positive_int),
        "half_open_max_calls": (1, positive_int),
        "is_failure": (None, _is_failure),
    }

    fail_max: int
    reset_timeout: float
    success_threshold: int
    failure_rate: float | None
    window: int
    min_calls: int
    half_open_max_calls: int
    is_failure: Callable[[BaseException], bool]


class _StateLog(pybreaker.CircuitBreakerListener):
    """Logs every transition and forwards it to the user's ``on_state_change``."""

    def __init__(self, circuit: Circuit, callback: Callable[[str, str, str], Any] | None) -> None:
        self.circuit = circuit
        self.callback = callback

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        old = _FROM_PYBREAKER.get(old_state.name, old_state.name) if old_state else CLOSED
        new = _FROM_PYBREAKER.get(new_state.name, new_state.name)
        level = logging.WARNING if new == OPEN else logging.INFO
        logger.log(level, "circuit %s: %s -> %s", self.circuit.name, old, new)
        if self.callback is not None:
            self.callback(self.circuit.name, old, new)


class Circuit(Layer):
    """A circuit breaker; decorate several functions with one to make them share it.

    >>> breaker = Circuit(fail_max=3, reset_timeout=10)
    >>> @breaker
    ... def ask(prompt): ...
    """

    kind = "circuit"
    policy: CircuitPolicy
    name: str

    def __init__(
        self,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        success_threshold: int = 1,
        failure_rate: float | None = None,
        window: int = 20,
        min_calls: int = 10,
        half_open_max_calls: int = 1,
        is_failure: Any = None,
        name: str | None = None,
        *,
        clock: _clock.Clock | None = None,
        on_state_change: Callable[[str, str, str], Any] | None = None,
        listeners: Sequence[pybreaker.CircuitBreakerListener] = (),
        storage: pybreaker.CircuitBreakerStorage | None = None,
    ) -> None:
        self.policy = CircuitPolicy(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            success_threshold=success_threshold,
            failure_rate=failure_rate,
            window=window,
            min_calls=min_calls,
            half_open_max_calls=half_open_max_calls,
            is_failure=is_failure,
        )
        self.name = name or f"circuit-{id(self):x}"
        self._clock = clock
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            success_threshold=success_threshold,
            state_storage=storage,
            listeners=[_StateLog(self, on_state_change), *listeners],
            name=self.name,
        )
        self._storage = self._breaker._state_storage
        # Re-entrant: a state-change listener may read stats() while a transition holds it.
        self._lock = threading.RLock()
        self._outcomes: deque[bool] = deque(maxlen=self.policy.window)
        self._opened_at: float | None = None
        self._probes = 0
        self.reset_stats()

    def __call__(self, fn: F) -> F:
        return attach(guarded(fn, self), fn, self)  # type: ignore[return-value]

    # ----------------------------------------------------------------- state

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        return _FROM_PYBREAKER[self._storage.state]

    def open(self) -> None:
        """Open the circuit now, by hand (e.g. from a health check)."""
        with self._lock:
            self._trip(_clock.resolve(self._clock).monotonic())

    def close(self) -> None:
        """Close the circuit now, by hand, forgetting the failures seen."""
        with self._lock:
            self._outcomes.clear()
            self._probes = 0
            self._breaker.close()

    def retry_after(self) -> float:
        """Seconds until a probe is allowed (0 unless open)."""
        if self._storage.state != pybreaker.STATE_OPEN or self._opened_at is None:
            return 0.0
        now = _clock.resolve(self._clock).monotonic()
        return _clock.until(self._opened_at + self.policy.reset_timeout, now)

    # ----------------------------------------------------------------- guard protocol

    def acquire(self) -> str:
        state = self._storage.state
        if state == pybreaker.STATE_CLOSED:
            return CLOSED
        with self._lock:
            return self._admit()

    async def acquire_async(self) -> str:
        return self.acquire()

    def _admit(self) -> str:
        """Not closed: let a probe through, or reject. Called with the lock held."""
        state = self._storage.state
        if state == pybreaker.STATE_CLOSED:
            return CLOSED
        if state == pybreaker.STATE_OPEN:
            now = _clock.resolve(self._clock).monotonic()
            if self._opened_at is None:  # opened elsewhere (shared storage): start our timer now
                self._opened_at = now
            reopens_at = self._opened_at + self.policy.reset_timeout
            if now < reopens_at:
                self._rejected += 1
                raise CircuitOpenError(f"circuit {self.name} is open", retry_after=_clock.until(reopens_at, now))
            self._probes = 0
            self._breaker.half_open()
        if self._probes >= self.policy.half_open_max_calls:
            self._rejected += 1
            raise CircuitOpenError(f"circuit {self.name} is half-open, probe in flight", retry_after=0.0)
        self._probes += 1
        return HALF_OPEN

    def release(self, token: str, outcome: BaseException | None) -> None:
        if outcome is None or isinstance(outcome, GeneratorExit):
            failed = False
        elif isinstance(outcome, Exception) and self.policy.is_failure(outcome):
            failed = True
        else:
            # Client error, rate limit, cancellation: no verdict on the provider.
            with self._lock:
                self._ignored += 1
                if token == HALF_OPEN:
                    self._probes -= 1
            return
        with self._lock:
            if failed:
                self._failures += 1
            else:
                self._successes += 1
            if token == HALF_OPEN:
                self._probes -= 1
                self._probe_finished(failed)
            elif self._storage.state == pybreaker.STATE_CLOSED:
                self._closed_outcome(failed)
            # else: a call that started before the circuit opened; it changes nothing.

    def _closed_outcome(self, failed: bool) -> None:
        policy = self.policy
        if self._outcomes.maxlen != policy.window:
            self._outcomes = deque(self._outcomes, maxlen=policy.window)
        self._outcomes.append(failed)
        storage = self._storage
        if not failed:
            if storage.counter:
                storage.reset_counter()
            return
        storage.increment_counter()
        if storage.counter >= policy.fail_max or self._rate_exceeded():
            self._trip(_clock.resolve(self._clock).monotonic())

    def _rate_exceeded(self) -> bool:
        rate = self.policy.failure_rate
        seen = len(self._outcomes)
        # A window shorter than min_calls would never hold enough calls: a full window is enough (as resilience4j).
        enough = min(self.policy.min_calls, self.policy.window)
        return rate is not None and seen >= enough and sum(self._outcomes) / seen >= rate

    def _probe_finished(self, failed: bool) -> None:
        if self._storage.state != pybreaker.STATE_HALF_OPEN:
            return
        if failed:
            self._trip(_clock.resolve(self._clock).monotonic())
            return
        self._storage.increment_success_counter()
        if self._storage.success_counter >= self.policy.success_threshold:
            self._outcomes.clear()
            self._breaker.close()

    def _trip(self, now: float) -> None:
        self._opened_at = now
        self._trips += 1
        self._outcomes.clear()
        self._breaker.open()

    # ----------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        with self._lock:
            seen = len(self._outcomes)
            return {
                "state": self.state,
                "calls": self._successes + self._failures + self._ignored,
                "successes": self._successes,
                "failures": self._failures,
                "ignored": self._ignored,
                "rejected": self._rejected,
                "trips": self._trips,
                "consecutive_failures": self._storage.counter,
                "failure_rate": sum(self._outcomes) / seen if seen else 0.0,
                "opened_at": self._opened_at,
                "retry_after": self.retry_after(),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._successes = self._failures = self._ignored = self._rejected = self._trips = 0

    def __repr__(self) -> str:
        return f"Circuit(name={self.name!r}, state={self.state!r})"


def circuit(fn: Any = None, /, *, name: str | None = None, clock: _clock.Clock | None = None, **policy: Any) -> Any:
    """Guard the decorated callable with its own :class:`Circuit` (see the module docstring).

    Use bare (``@circuit``) or configured (``@circuit(fail_max=3)``); to share
    one breaker between functions, create a :class:`Circuit` and decorate
    with it.
    """
    check_target("circuit", fn)
    if fn is not None:
        return Circuit(name=name or getattr(fn, "__qualname__", None), clock=clock, **policy)(fn)

    CircuitPolicy(**{k: v for k, v in policy.items() if k in CircuitPolicy._fields})  # validate now

    def decorate(func: F) -> F:
        return Circuit(name=name or getattr(func, "__qualname__", None), clock=clock, **policy)(func)

    return decorate
