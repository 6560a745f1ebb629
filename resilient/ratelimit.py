"""``@rate_limited``: stay under a provider's limits instead of collecting 429s.

At most ``calls`` units per ``period`` seconds, as a token bucket: the bucket
holds up to ``calls`` units (a full bucket allows a burst of that many), and
refills continuously at ``calls / period`` units per second. That is how
providers count requests-per-minute and tokens-per-minute. A call's weight is
``cost(*args, **kwargs)`` (e.g. estimated tokens), default 1.

``mode="wait"`` sleeps through the toolkit clock until the call is allowed;
``mode="raise"`` raises :class:`RateLimitExceeded` (a
:class:`~resilient.errors.RateLimitError`) whose ``retry_after`` is exactly
the time until the bucket holds enough, so an outer ``@backoff`` waits just
that long. Waiting callers *reserve* their units when they arrive (the bucket
may go into debt), so they are served first come, first served and each
sleeps once, for an exact time, instead of racing for every refill. A caller
interrupted while it sleeps (``KeyboardInterrupt``, a cancelled task) gives
its units back, and counts as neither admitted nor waited in the stats: only
a call that goes ahead does.

Tuning at runtime. A change of ``calls`` or ``period`` applies from the moment
it is made, never retroactively: the bucket is first brought up to date at the
old limits (the units earned so far stay), then refills at the new rate. The
bucket never holds more than ``calls`` units, so lowering ``calls`` cuts the
burst allowed right away; raising it adds no unit at once, the bucket fills up
to the new capacity at the new rate.

What the ``ratelimit`` package provides and what this module adds
-----------------------------------------------------------------
``ratelimit.limits`` counts calls in fixed windows: up to twice the limit
passes around a window edge (``calls`` at the end of one window, ``calls``
at the start of the next), which is exactly the burst a provider's
sliding/bucket limiter answers with 429. It also counts refused calls
against the window, supports neither weights (tokens) nor coroutines, and
its ``sleep_and_retry`` sleeps with ``time.sleep`` for the whole remaining
window. None of that meets this contract, so the bucket is implemented here
(a few lines of arithmetic under a lock). What we keep from ``ratelimit`` is
its exception: :class:`RateLimitExceeded` is also a
``ratelimit.RateLimitException`` (with ``period_remaining``), so code written
against that package's ``except RateLimitException`` keeps working when it
moves to this decorator.

The bucket's mutable part sits behind :class:`BucketState` (one atomic
operation per call), so a shared (Redis) state can make a limiter
cross-process without touching this logic. A :class:`RateLimiter` can
decorate several functions, and ``@multiplex`` uses one per key for
``limits={"rpm": ..., "tpm": ...}``.
"""

from __future__ import annotations

import asyncio
import math
import numbers
import threading
from collections.abc import Callable
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

from ratelimit import RateLimitException

from . import clock as _clock
from .errors import RateLimitError
from .layer import ASYNC, ASYNC_GEN, GEN, Layer, attach, kind_of
from .policy import Policy, non_negative_float, one_of, optional, positive_float

__all__ = ["rate_limited", "RateLimiter", "RateLimitPolicy", "RateLimitExceeded", "BucketState", "MemoryBucketState"]

F = TypeVar("F", bound=Callable[..., Any])


class RateLimitExceeded(RateLimitException, RateLimitError):
    """Raised by ``@rate_limited(mode="raise")`` (and when a wait would pass ``max_wait``).

    A :class:`~resilient.errors.RateLimitError` for the toolkit (``classify``
    says rate_limit, retryable, with ``retry_after``) and a
    ``ratelimit.RateLimitException`` for code written against that package.
    """

    def __init__(self, message: str = "rate limit reached", *, retry_after: float | None = None, **fields: Any) -> None:
        RateLimitError.__init__(self, message, retry_after=retry_after, **fields)
        self.period_remaining = retry_after


def _checked_cost(cost: Any) -> float:
    """A call's weight, checked: a negative one would add tokens, an infinite or NaN one break the bucket for good."""
    if not isinstance(cost, (int, float, numbers.Real)) or not 0 <= float(cost) < math.inf:
        raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")
    return float(cost)


def _cost(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    raise ValueError(f"{name} must be None or a function of the call's arguments, got {value!r}")


class RateLimitPolicy(Policy):
    """Configuration of a limiter; a change applies from the next call (``calls`` and ``period``: from now on)."""

    _fields = {
        "calls": (60.0, positive_float),
        "period": (60.0, positive_float),
        "mode": ("wait", one_of("wait", "raise")),
        "cost": (None, _cost),
        "max_wait": (None, optional(non_negative_float)),
    }

    _watched = frozenset({"calls", "period"})  # the bucket must be settled at the old limits first

    calls: float
    period: float
    mode: str
    cost: Callable[..., float] | None
    max_wait: float | None


class BucketState(Protocol):
    """A token bucket's shared state; each method is one atomic step."""

    def take(self, cost: float, now: float, capacity: float, rate: float, *, reserve: bool) -> float:
        """Refill to ``now``, then take ``cost`` units.

        Returns 0 when the units were there and are taken. Otherwise returns
        the seconds until they will be; with ``reserve`` they are taken anyway
        (the bucket goes into debt, paid back by the refill), without it
        nothing is taken. A cost above ``capacity`` counts as ``capacity``
        for that check, so it is allowed once the bucket is full.
        """

    def give_back(self, cost: float) -> None:
        """Return units taken by a call that did not happen (cancelled or interrupted while waiting)."""

    def debit(self, cost: float, now: float, capacity: float, rate: float) -> None:
        """Take units unconditionally (usage known only after the call, e.g. tokens).

        With ``cost`` 0 it only refills to ``now``: the limiter does so at the
        old limits when they change, so the new ones apply from then on.
        """

    def level(self, now: float, capacity: float, rate: float) -> float:
        """Units in the bucket at ``now`` (negative while in debt)."""


_SLACK = 1e-9  # of a unit: what float refills may fall short by and still count as whole


class MemoryBucketState:
    """:class:`BucketState` for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: float | None = None  # None: never used, full
        self._updated = 0.0

    def _refill(self, now: float, capacity: float, rate: float) -> float:
        tokens = self._tokens
        if tokens is None:
            tokens = capacity
        elif now > self._updated:
            tokens += (now - self._updated) * rate
        self._updated = max(now, self._updated)
        return min(capacity, tokens)  # also when no time passed: a lowered capacity holds at once

    def take(self, cost: float, now: float, capacity: float, rate: float, *, reserve: bool) -> float:
        with self._lock:
            tokens = self._refill(now, capacity, rate)
            need = min(cost, capacity)
            short = need - tokens
            # Float refills land a few ulps short of a whole unit: a caller who waited exactly
            # the retry_after it was given must be admitted, not told to wait 1e-17 s more
            # (a FakeClock cannot even move by that much, so such a test would never end).
            # The refill's error is ``rate`` times an ulp of the clock reading, so far from
            # zero (a clock at 1.7e9) it outgrows _SLACK; both are checked only when short.
            if short <= 0 or short <= _SLACK * max(1.0, need) or short <= 4 * rate * math.ulp(now):
                self._tokens = tokens - cost
                return 0.0
            self._tokens = tokens - cost if reserve else tokens
            return short / rate

    def give_back(self, cost: float) -> None:
        with self._lock:
            if self._tokens is not None:
                self._tokens += cost

    def debit(self, cost: float, now: float, capacity: float, rate: float) -> None:
        with self._lock:
            self._tokens = self._refill(now, capacity, rate) - cost

    def level(self, now: float, capacity: float, rate: float) -> float:
        with self._lock:
            if self._tokens is None:
                return capacity
            return min(capacity, self._tokens + max(0.0, now - self._updated) * rate)


class RateLimiter(Layer):
    """A token bucket; decorate several functions with one to make them share the limit.

    >>> per_minute = RateLimiter(calls=50, period=60)
    >>> @per_minute
    ... def ask(prompt): ...
    """

    kind = "rate_limit"
    policy: RateLimitPolicy

    def __init__(
        self,
        calls: float = 60.0,
        period: float = 60.0,
        *,
        cost: Callable[..., float] | None = None,
        mode: str = "wait",
        max_wait: float | None = None,
        state: BucketState | None = None,
        name: str | None = None,
        clock: _clock.Clock | None = None,
    ) -> None:
        self.policy = RateLimitPolicy(calls=calls, period=period, mode=mode, cost=cost, max_wait=max_wait)
        self.name = name or f"rate-limit-{id(self):x}"
        self._state: BucketState = state if state is not None else MemoryBucketState()
        self._clock = clock
        self._lock = threading.Lock()
        # (capacity, rate) the bucket runs at: replaced only once the bucket is settled at the old ones.
        self._limits = (self.policy.calls, self.policy.calls / self.policy.period)
        self.reset_stats()
        self.policy._listen(self._limits_changed)

    def __call__(self, fn: F) -> F:
        return self.wrap(fn)

    # ----------------------------------------------------------------- admission

    def try_acquire(self, cost: float = 1.0) -> float:
        """Take ``cost`` units if the bucket holds them: returns 0, else the seconds to wait (nothing taken)."""
        cost = _checked_cost(cost)
        wait = self._state.take(cost, _clock.resolve(self._clock).monotonic(), *self._limits, reserve=False)
        with self._lock:
            if wait:
                self._rejected += 1
            else:
                self._admitted += 1
        return wait

    def acquire(self, cost: float = 1.0) -> float:
        """Admit a call of weight ``cost``: sleep (mode wait) or raise (mode raise). Returns seconds slept."""
        clock = _clock.resolve(self._clock)
        cost = _checked_cost(cost)
        wait = self._reserve(cost, clock)
        if not wait:  # the common case, counted here without another call
            with self._lock:
                self._admitted += 1
            return wait
        try:
            clock.sleep(wait)
        except BaseException:  # interrupted (Ctrl-C): the call will not happen, its units go back
            self._state.give_back(cost)
            raise
        self._admit(wait)
        return wait

    async def acquire_async(self, cost: float = 1.0) -> float:
        """:meth:`acquire` for a task: sleeps without blocking its event loop."""
        clock = _clock.resolve(self._clock)
        cost = _checked_cost(cost)
        wait = self._reserve(cost, clock)
        if wait:
            try:
                await clock.asleep(wait)
            except BaseException:  # cancelled or interrupted: the call will not happen, its units go back
                self._state.give_back(cost)
                raise
        self._admit(wait)
        return wait

    def debit(self, cost: float) -> None:
        """Count units used after the fact (actual tokens), even into debt."""
        cost = _checked_cost(cost)
        self._state.debit(cost, _clock.resolve(self._clock).monotonic(), *self._limits)

    def available(self) -> float:
        """Units in the bucket now (negative while waiting callers hold reservations)."""
        return self._state.level(_clock.resolve(self._clock).monotonic(), *self._limits)

    def _limits_changed(self, names: set[str] | frozenset[str]) -> None:
        """``calls`` or ``period`` changed: settle the bucket at the old limits, then run at the new ones.

        Without this, the next refill would count the time since the last
        call at the new rate: slowing down would take back units already
        earned, speeding up would hand out units never earned.
        """
        p = self.policy
        with self._lock:  # two changes at once: each settles at the limits the other left
            self._state.debit(0.0, _clock.resolve(self._clock).monotonic(), *self._limits)
            self._limits = (p.calls, p.calls / p.period)

    def _reserve(self, cost: float, clock: _clock.Clock) -> float:
        """Take (mode raise) or reserve (mode wait) ``cost`` units: the seconds to wait, or raise."""
        p = self.policy
        now = clock.monotonic()
        capacity, rate = self._limits
        if p.mode == "raise":
            wait = self._state.take(cost, now, capacity, rate, reserve=False)
            if wait:
                self._refuse(wait)
        else:
            wait = self._state.take(cost, now, capacity, rate, reserve=True)
            if wait and p.max_wait is not None and wait > p.max_wait:
                self._state.give_back(cost)
                self._refuse(wait)
        return wait

    def _admit(self, wait: float) -> None:
        """Count a call that goes ahead (after its wait, so an interrupted one is not counted)."""
        with self._lock:
            self._admitted += 1
            if wait:
                self._waited += 1
                self._waited_seconds += wait

    def _refuse(self, wait: float) -> None:
        with self._lock:
            self._rejected += 1
        p = self.policy
        raise RateLimitExceeded(f"rate limit {self.name}: {p.calls:g} per {p.period:g}s reached", retry_after=wait)

    def _cost_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
        cost = self.policy.cost
        return 1.0 if cost is None else cost(*args, **kwargs)

    # ----------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "admitted": self._admitted,
                "waited": self._waited,
                "waited_seconds": self._waited_seconds,
                "rejected": self._rejected,
                "available": self.available(),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._admitted = self._waited = self._rejected = 0
            self._waited_seconds = 0.0

    def __repr__(self) -> str:
        p = self.policy
        return f"RateLimiter(name={self.name!r}, {p.calls:g} per {p.period:g}s, mode={p.mode!r})"

    # ----------------------------------------------------------------- wrappers
    #
    # A stream is admitted when it starts (its first ``next``), like a call.

    def wrap(self, fn: F) -> F:
        kind = kind_of(fn)
        acquire, acquire_async, cost_of = self.acquire, self.acquire_async, self._cost_of

        if kind == ASYNC:

            async def limited(*args: Any, **kwargs: Any) -> Any:
                await acquire_async(cost_of(args, kwargs))
                return await fn(*args, **kwargs)

        elif kind == GEN:

            def limited(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                acquire(cost_of(args, kwargs))
                return (yield from fn(*args, **kwargs))

        elif kind == ASYNC_GEN:

            async def limited(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                await acquire_async(cost_of(args, kwargs))
                async with aclosing(fn(*args, **kwargs)) as stream:
                    async for chunk in stream:
                        yield chunk

        else:

            def limited(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                acquire(cost_of(args, kwargs))
                return fn(*args, **kwargs)

        return attach(limited, fn, self)  # type: ignore[return-value]


def rate_limited(
    calls: float = 60.0,
    period: float = 60.0,
    *,
    cost: Callable[..., float] | None = None,
    mode: str = "wait",
    max_wait: float | None = None,
    limiter: RateLimiter | None = None,
    state: BucketState | None = None,
    name: str | None = None,
    clock: _clock.Clock | None = None,
) -> Callable[[F], F]:
    """At most ``calls`` units per ``period`` seconds for the decorated callable (see the module docstring).

    ``@rate_limited(50, 60)`` gives the function its own bucket (bare
    ``@rate_limited``: 60 per minute); pass ``limiter=`` (or decorate with a
    :class:`RateLimiter`) to share one.
    """
    if callable(calls):  # used bare: @rate_limited
        return rate_limited()(calls)  # type: ignore[return-value]
    if limiter is not None:
        return limiter.wrap
    RateLimitPolicy(calls=calls, period=period, mode=mode, cost=cost, max_wait=max_wait)  # validate now

    def decorate(fn: F) -> F:
        own = RateLimiter(
            calls, period, cost=cost, mode=mode, max_wait=max_wait, state=state,
            name=name or getattr(fn, "__qualname__", None), clock=clock,
        )  # fmt: skip
        return own.wrap(fn)

    return decorate
