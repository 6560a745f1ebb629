"""``@backoff``: retry transient failures, with exponential, jittered, hint-aware waits.

Delay before retry *n* (n = 0, 1, ...) is ``min(max_delay, initial_delay *
factor**n)``, then jittered:

* ``None``: exactly that;
* ``"full"``: uniform in ``[0, d]`` (AWS's recommendation: spreads a herd best);
* ``"equal"``: ``d/2`` plus uniform in ``[0, d/2]`` (never retries at once);
* ``"decorrelated"``: ``min(max_delay, uniform(initial_delay, 3 * previous))``.

A server's hint (Retry-After headers, a ``CircuitOpenError``'s
``retry_after``) is a floor: the wait is at least that long. A hint above
``max_retry_after`` means the provider will not be back soon: raise now
rather than hold the caller. ``deadline`` bounds the whole call, retries
included, measured from the start of its first attempt, and is checked
*before* each sleep so that it is never overshot (tenacity's
``stop_before_delay``). Like every field it can be set while a call is
retrying and applies from its next retry on; a plain function call that began
with no deadline, budget or gate took the fast path, which reads no clock, so
for that call it is measured from its first failure. A shared
:class:`RetryBudget` stops retry storms; a shared :class:`ThrottleGate` makes
one 429 hold back every caller.

A retry is counted (``retries``, ``slept``, the budget) once its wait is over:
a call cancelled while it waits (``asyncio.wait_for``, a ``KeyboardInterrupt``)
made no retry, and gives its budget unit back.

After the last attempt the original exception propagates unchanged, with a
PEP 678 note saying how many attempts were made and why retrying stopped.

Streams (generator and async generator functions) are retried only until their
first chunk: after that, the consumer has seen output and a retry would
repeat it, so a failure propagates. Closing the stream we return closes the
one it reads from, at once, whatever chunk it was at.

The success path of a plain function is one call plus one counter increment:
the retry machinery (clock, randomness, budget, gate) is consulted only once
something failed, unless a deadline, budget or gate needs a look before the
first attempt. Coroutines and streams read the clock once before it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from contextlib import aclosing, closing
from typing import Any, TypeVar, overload

from . import clock as _clock
from .errors import RateLimitError, classify
from .layer import ASYNC, ASYNC_GEN, GEN, Layer, attach, check_target, kind_of
from .policy import Policy, at_least, non_negative_float, non_negative_int, one_of, optional, positive_float
from .retry_budget import RetryBudget
from .throttle import ThrottleGate

__all__ = ["backoff", "BackoffPolicy", "Backoff", "RetryBudget", "ThrottleGate"]

F = TypeVar("F", bound=Callable[..., Any])


def _retry_on(name: str, value: Any) -> Any:
    if value is None or callable(value) and not isinstance(value, type):
        return value
    types = value if isinstance(value, tuple) else (value,)
    if types and all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
        return types
    raise ValueError(f"{name} must be None, an exception type, a tuple of them, or a predicate; got {value!r}")


def _instance_of(cls: type) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is not None and not isinstance(value, cls):
            raise ValueError(f"{name} must be a {cls.__name__} or None, got {value!r}")
        return value

    return check


class BackoffPolicy(Policy):
    """Configuration of one ``@backoff`` layer; every field can be changed at runtime."""

    _fields = {
        "max_retries": (5, non_negative_int),
        "initial_delay": (1.0, non_negative_float),
        "factor": (2.0, at_least(1.0)),
        "max_delay": (16.0, non_negative_float),
        "jitter": ("full", one_of(None, "full", "equal", "decorrelated")),
        "retry_on": (None, _retry_on),
        "respect_retry_after": (True, one_of(True, False)),
        "max_retry_after": (120.0, non_negative_float),
        "deadline": (None, optional(positive_float)),
        "budget": (None, _instance_of(RetryBudget)),
        "gate": (None, _instance_of(ThrottleGate)),
    }

    max_retries: int
    initial_delay: float
    factor: float
    max_delay: float
    jitter: str | None
    retry_on: Any
    respect_retry_after: bool
    max_retry_after: float
    deadline: float | None
    budget: RetryBudget | None
    gate: ThrottleGate | None


class _Attempts:
    """Per-call retry state: fresh for every call, so nothing mutable is shared between calls."""

    __slots__ = ("layer", "policy", "clock", "started", "made", "previous", "spent")

    def __init__(self, layer: Backoff, clock: _clock.Clock, started: float) -> None:
        self.layer = layer
        self.policy = layer.policy
        self.clock = clock
        self.started = started
        self.made = 0
        self.previous = self.policy.initial_delay
        self.spent: tuple[RetryBudget, int] | None = None  # the budget and second the pending retry was taken from

    def hold(self) -> None:
        """Before the first attempt: wait while the shared gate is closed (usually not at all)."""
        wait = self.first_wait()
        if wait:
            self.clock.sleep(wait)
            self.held(wait)

    async def ahold(self) -> None:
        """:meth:`hold` for a coroutine or async stream."""
        wait = self.first_wait()
        if wait:
            await self.clock.asleep(wait)
            self.held(wait)

    def held(self, wait: float) -> None:
        # Counted once the wait is over, as a retry is: a wait cut short held no attempt back.
        gate = self.policy.gate
        if gate is not None:
            gate.record_wait(wait)

    def first_wait(self) -> float:
        """Before the first attempt: what the shared gate says to hold back (usually 0)."""
        self.made = 1
        gate = self.policy.gate
        if gate is None:
            return 0.0
        wait = gate.wait_time(self.clock.monotonic())
        if wait > 0:
            # Another caller's Retry-After may have closed the gate for longer than this
            # call would wait for its own: the same limits apply to both.
            if wait > self.policy.max_retry_after:
                reason, limit = "retry_after_too_long", f"max_retry_after of {self.policy.max_retry_after:g}s"
            elif self._past_deadline(wait):
                reason, limit = "deadline", f"{self.policy.deadline:g}s deadline"
            else:
                return wait
            self.layer.record_failure(0, reason)
            raise RateLimitError(f"throttle gate closed for {wait:.3g}s, past the {limit}", retry_after=wait)
        return wait

    def delay_after(self, exc: Exception) -> float | str:
        """The wait before the next attempt, or the reason (a ``str``) to give up."""
        policy = self.policy
        # An HTTP-date Retry-After is measured against this layer's clock (its own
        # clock= or the installed one), never a different one installed globally.
        info = classify(exc, now=self.clock.time())
        if not self.layer.should_retry(exc, info.retryable):
            return "not_retryable"
        gate = policy.gate
        hint = info.retry_after if policy.respect_retry_after else None
        too_long = hint is not None and hint > policy.max_retry_after
        if gate is not None and info.kind == "rate_limit":
            # A hint this layer would not wait for itself must not hold every other caller either:
            # the gate then closes for its own escalation step only.
            gate.record_throttle(None if too_long else hint, now=self.clock.monotonic())
        if self.made > policy.max_retries:
            return "max_retries"
        if too_long:
            return "retry_after_too_long"
        delay = self.layer.compute_delay(self.made - 1, self.previous)
        self.previous = delay
        if hint is not None and hint > delay:
            delay = hint
        if gate is not None:
            closed = gate.wait_time(self.clock.monotonic())
            if closed > policy.max_retry_after:
                return "retry_after_too_long"
            delay = max(delay, closed)
        if self._past_deadline(delay):
            return "deadline"
        budget = policy.budget
        if budget is not None:
            second = budget.spend()
            if second is None:
                return "budget"
            self.spent = (budget, second)
        return delay

    def _past_deadline(self, delay: float) -> bool:
        deadline = self.policy.deadline
        return deadline is not None and self.clock.monotonic() - self.started + delay > deadline

    def retry_delay(self, failure: Exception) -> float:
        """Seconds to wait before retrying ``failure``; raises it (annotated) when giving up."""
        delay = self.delay_after(failure)
        if isinstance(delay, str):
            raise self.give_up(failure, delay)
        return delay

    # A retry counts (stats, attempts) once its wait is over and the attempt starts. A wait cut
    # short (the caller cancelled, a KeyboardInterrupt) made no retry: its budget unit goes back,
    # or a shared budget would refuse the next genuine caller for a retry nobody sent.

    def pause(self, failure: Exception) -> None:
        """After ``failure``: wait, then count the retry about to be made (or raise ``failure``)."""
        delay = self.retry_delay(failure)
        if delay:
            try:
                self.clock.sleep(delay)
            except BaseException:
                self.cut_short()
                raise
        self.retrying(delay)

    async def apause(self, failure: Exception) -> None:
        """:meth:`pause` for a coroutine or async stream."""
        delay = self.retry_delay(failure)
        if delay:
            try:
                await self.clock.asleep(delay)
            except BaseException:
                self.cut_short()
                raise
        self.retrying(delay)

    def retrying(self, slept: float) -> None:
        self.made += 1
        self.layer.record_retry(slept)

    def cut_short(self) -> None:
        if self.spent is not None:
            budget, second = self.spent
            budget.refund(second)

    def give_up(self, exc: BaseException, reason: str) -> BaseException:
        """Annotate ``exc`` (PEP 678 note), count the failure, and hand ``exc`` back to raise."""
        plural = "" if self.made == 1 else "s"
        exc.add_note(f"resilient.backoff: gave up after {self.made} attempt{plural} ({reason})")
        self.layer.record_failure(self.made, reason)
        return exc

    def succeeded(self) -> None:
        gate = self.policy.gate
        if gate is not None:
            gate.record_success()
        self.layer.record_success(self.made)


class Backoff(Layer):
    """The runtime of one ``@backoff`` layer: policy, randomness, clock and counters."""

    kind = "backoff"
    policy: BackoffPolicy

    def __init__(self, policy: BackoffPolicy, *, clock: _clock.Clock | None = None, rng: random.Random | None = None):
        self.policy = policy
        self._clock = clock
        self._rng: Any = rng if rng is not None else random
        self._lock = threading.Lock()
        self.reset_stats()

    # ----------------------------------------------------------------- decisions

    def should_retry(self, exc: Exception, retryable: bool) -> bool:
        retry_on = self.policy.retry_on
        if retry_on is None:
            return retryable
        if isinstance(retry_on, tuple):
            return isinstance(exc, retry_on)
        return bool(retry_on(exc))

    def compute_delay(self, n: int, previous: float) -> float:
        """The jittered delay before retry ``n`` (0-based); ``previous`` feeds decorrelated jitter."""
        p = self.policy
        jitter = p.jitter
        if jitter == "decorrelated":
            upper = max(p.initial_delay, 3.0 * previous)
            return min(p.max_delay, self._rng.uniform(p.initial_delay, upper))
        try:
            delay = min(p.max_delay, p.initial_delay * p.factor**n)
        except OverflowError:
            delay = p.max_delay
        if jitter == "full":
            return self._rng.uniform(0.0, delay)
        if jitter == "equal":
            return delay / 2.0 + self._rng.uniform(0.0, delay / 2.0)
        return delay

    def _start(self) -> _Attempts:
        # The start is recorded whether or not a deadline is set: one set while the call is
        # between retries applies to its next retry, as every other policy field does.
        clock = _clock.resolve(self._clock)
        policy = self.policy
        if policy.budget is not None:
            policy.budget.record_call()
        return _Attempts(self, clock, clock.monotonic())

    # ----------------------------------------------------------------- stats

    def record_success(self, attempts: int) -> None:
        with self._lock:
            self._successes += 1
            self._attempts += attempts

    def record_retry(self, slept: float) -> None:
        with self._lock:
            self._retries += 1
            self._slept += slept

    def record_failure(self, attempts: int, reason: str) -> None:
        with self._lock:
            self._failures += 1
            self._attempts += attempts
            self._gave_up[reason] = self._gave_up.get(reason, 0) + 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self._successes + self._failures,
                "attempts": self._attempts,
                "retries": self._retries,
                "successes": self._successes,
                "failures": self._failures,
                "slept": self._slept,
                "gave_up": dict(self._gave_up),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._successes = self._failures = self._attempts = self._retries = 0
            self._slept = 0.0
            self._gave_up: dict[str, int] = {}

    # ----------------------------------------------------------------- wrappers
    #
    # One loop per kind of callable. Each asks ``_Attempts`` what to do after a
    # failure, so the decision logic exists once; only the way of calling and
    # sleeping (plain, awaited, first chunk of a stream) differs.

    def wrap(self, fn: F) -> F:
        kind = kind_of(fn)
        build = {ASYNC: self._wrap_async, GEN: self._wrap_generator, ASYNC_GEN: self._wrap_async_generator}
        return attach(build.get(kind, self._wrap_sync)(fn), fn, self)  # type: ignore[return-value]

    def _wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        policy = self.policy

        def call_with_backoff(*args: Any, **kwargs: Any) -> Any:
            if policy.budget is None and policy.gate is None and policy.deadline is None:
                # Fast path: nothing to consult before the first attempt, not even the clock
                # (a read costs a quarter of this layer's overhead): ``started`` is the first failure.
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    attempts = self._start()
                    attempts.made = 1
                    attempts.pause(exc)
                else:
                    self.record_success(1)
                    return result
            else:
                attempts = self._start()
                attempts.hold()
            while True:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    attempts.pause(exc)
                    continue
                attempts.succeeded()
                return result

        return call_with_backoff

    def _wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def call_with_backoff(*args: Any, **kwargs: Any) -> Any:
            attempts = self._start()
            await attempts.ahold()
            while True:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    await attempts.apause(exc)
                    continue
                attempts.succeeded()
                return result

        return call_with_backoff

    def _wrap_generator(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def stream_with_backoff(*args: Any, **kwargs: Any) -> Any:
            attempts = self._start()
            attempts.hold()
            while True:
                stream = fn(*args, **kwargs)
                try:
                    first = next(stream)
                except StopIteration as end:
                    attempts.succeeded()
                    return end.value
                except Exception as exc:
                    attempts.pause(exc)
                    continue
                break
            # The first chunk arrived: from here on a failure is the consumer's to see.
            attempts.succeeded()
            # A consumer closing us at ``yield first`` must close the stream too (``yield from``
            # does so only for a close after it): it may hold a key, a slot, an HTTP response.
            with closing(stream):
                yield first
                return (yield from stream)

        return stream_with_backoff

    def _wrap_async_generator(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def stream_with_backoff(*args: Any, **kwargs: Any) -> Any:
            attempts = self._start()
            await attempts.ahold()
            while True:
                stream = fn(*args, **kwargs)
                try:
                    first = await stream.__anext__()
                except StopAsyncIteration:
                    attempts.succeeded()
                    return
                except Exception as exc:
                    await attempts.apause(exc)
                    continue
                break
            attempts.succeeded()
            async with aclosing(stream):
                yield first
                async for chunk in stream:
                    yield chunk

        return stream_with_backoff


@overload
def backoff(fn: F, /) -> F: ...
@overload
def backoff(
    *,
    max_retries: int = 5,
    initial_delay: float = 1.0,
    factor: float = 2.0,
    max_delay: float = 16.0,
    jitter: str | None = "full",
    retry_on: Any = None,
    respect_retry_after: bool = True,
    max_retry_after: float = 120.0,
    deadline: float | None = None,
    budget: RetryBudget | None = None,
    gate: ThrottleGate | None = None,
    clock: _clock.Clock | None = None,
    rng: random.Random | None = None,
) -> Callable[[F], F]: ...


def backoff(fn: Any = None, /, *, clock: _clock.Clock | None = None, rng: random.Random | None = None, **policy: Any) -> Any:
    """Retry transient failures of the decorated callable (see the module docstring).

    Use bare (``@backoff``) or configured (``@backoff(max_retries=3)``). Every
    keyword except ``clock`` and ``rng`` is a :class:`BackoffPolicy` field,
    validated now and tunable later through ``fn.policy``. ``rng`` (a
    :class:`random.Random`) makes jitter reproducible in tests.
    """
    check_target("backoff", fn)

    def decorate(func: F) -> F:
        return Backoff(BackoffPolicy(**policy), clock=clock, rng=rng).wrap(func)

    if fn is not None:
        return decorate(fn)
    BackoffPolicy(**policy)  # validate at decoration time, before any call
    return decorate
