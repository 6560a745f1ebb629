"""``@multiplex``: many API keys behind one function.

Each attempt takes a key from a :class:`KeyPool` by a strategy and passes it
to the wrapped function as the keyword ``param`` (``api_key``), so the
function stays a plain adapter call. What a key's answer says decides what
happens next:

* a rate limit (429) cools that key for the server's ``retry_after`` (else
  ``cooldown`` seconds) and the *same call* goes out at once on another key:
  the limit is the key's, not the provider's, so this is no backoff retry.
  When every usable key is cooling, :class:`~resilient.errors.RateLimitError`
  says when the first one is back (``retry_after``), so an outer ``@backoff``
  waits at least that long (a hint is its floor);
* an authentication error (401/403) disables the key for good (kept in stats
  with the reason) and the call moves on; with every key disabled,
  :class:`~resilient.errors.NoKeyAvailableError`;
* any other error is the call's, not the key's: it propagates (retrying it
  is ``@backoff``'s job).

A stream is moved to another key only before its first chunk, and holds its
key (``in_flight``) until it ends or is closed.

Strategies: ``"round-robin"``; ``"least-loaded"`` (fewest calls in flight,
ties by fewest requests); ``"weighted"`` (smooth weighted round-robin, as in
nginx: deterministic, and spread evenly rather than in runs); ``"usage"``
(fewest tokens in the last minute); or a callable that gets the usable keys
and returns one. Per-key limits skip a key rather than send to it:
``max_concurrent_per_key``, and ``limits={"rpm": ..., "tpm": ...}`` through a
:class:`~resilient.ratelimit.RateLimiter` per key (tokens are counted after
the answer, from its ``usage``). Limits are policy fields, ``policy.rpm`` and
``policy.tpm``: a change applies to every key at once (what a key already
used stays used; ``None`` lifts the limit).

When every usable key has ``max_concurrent_per_key`` calls in flight, a call
waits for one of them to finish, like a connection pool (a thread blocks, a
task awaits), up to ``max_wait`` seconds (default 60; ``0`` refuses at once,
``None`` waits as long as it takes); past that,
:class:`~resilient.errors.RateLimitError`. Waiting has no fixed order: every
finished call wakes the waiters and one of them takes the slot. A key that
starts cooling or is disabled meanwhile wakes them too, and they get the
error that describes the pool now; so does a change of the strategy, the
per-key cap or the limits (a raised cap admits waiters at once).

Keys never leave the pool except as the keyword argument: stats, logs, reprs
and errors show a name (the environment variable, the dict key) or a
masked fingerprint (``sk-…a1b2``).

A *keyless* pool (``KeyPool(keyless=True)``) has one endpoint that sends no
key: a local server (Ollama, TGI, vLLM) gets the same per-endpoint accounting
and the same pacing on its rate-limit answers as a keyed provider, so the
prebuilt clients have one stack for both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from . import clock as _clock
from .errors import NoKeyAvailableError, RateLimitError, classify
from .keys import keys_from_env
from .layer import ASYNC, ASYNC_GEN, GEN, Layer, attach, kind_of
from .policy import Policy, non_negative_float, one_of, optional, positive_float, positive_int
from .ratelimit import RateLimiter
from .secrets import fingerprint

__all__ = ["multiplex", "KeyPool", "MultiplexPolicy", "STRATEGIES"]

logger = logging.getLogger("resilient.multiplex")

F = TypeVar("F", bound=Callable[..., Any])

STRATEGIES = ("round-robin", "least-loaded", "weighted", "usage")
_NO_KEY = "no-key"  # the one endpoint of a keyless pool, as stats name it
_USAGE_WINDOW = 60.0  # seconds of token usage the "usage" strategy compares


def _strategy(name: str, value: Any) -> Any:
    if callable(value) or value in STRATEGIES:
        return value
    raise ValueError(f"{name} must be one of {', '.join(map(repr, STRATEGIES))} or a callable; got {value!r}")


def _identifier(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise ValueError(f"{name} must be a keyword argument name, got {value!r}")
    return value


def _callable_or_none(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    raise ValueError(f"{name} must be None or a function of the result, got {value!r}")


class MultiplexPolicy(Policy):
    """Configuration of a key pool; shared by every function that uses it."""

    _fields = {
        "strategy": ("round-robin", _strategy),
        "param": ("api_key", _identifier),
        "max_concurrent_per_key": (None, optional(positive_int)),
        "max_wait": (60.0, optional(non_negative_float)),
        "cooldown": (30.0, non_negative_float),
        "usage": (None, _callable_or_none),
        "rpm": (None, optional(positive_float)),
        "tpm": (None, optional(positive_float)),
    }
    # Acted on at once: callers waiting for a slot look again, every key's limiter follows.
    _watched = frozenset({"strategy", "max_concurrent_per_key", "rpm", "tpm"})

    strategy: Any
    param: str
    max_concurrent_per_key: int | None
    max_wait: float | None
    cooldown: float
    usage: Callable[[Any], Any] | None
    rpm: float | None
    tpm: float | None


class PoolKey:
    """One key and what the pool knows about it; its repr and stats never show the key."""

    __slots__ = (
        "name", "fingerprint", "weight", "_secret", "_current", "in_flight", "requests", "successes", "failures",
        "input_tokens", "output_tokens", "total_tokens", "last_error", "cooling_until", "disabled", "rpm", "tpm",
        "_recent", "_recent_tokens",
    )  # fmt: skip

    def __init__(self, name: str, secret: str | None, weight: float) -> None:
        self.name = name
        self.fingerprint = fingerprint(secret)
        self.weight = weight
        self._secret = secret
        self._current = 0.0
        self.in_flight = self.requests = self.successes = self.failures = 0
        self.input_tokens = self.output_tokens = self.total_tokens = 0
        self.last_error: str | None = None
        self.cooling_until = float("-inf")
        self.disabled: str | None = None
        self.rpm: RateLimiter | None = None
        self.tpm: RateLimiter | None = None
        self._recent: deque[tuple[float, int]] = deque()  # (when, tokens) of the last minute's answers
        self._recent_tokens = 0  # their sum

    def record_tokens(self, now: float, tokens: int) -> None:
        """Count an answer's tokens in the last minute's window.

        The window is trimmed on every answer, whatever the strategy, so it
        holds one minute of answers at most (a pool that never reads it must
        not grow for ever) and reading it costs no sum.
        """
        self._recent.append((now, tokens))
        self._recent_tokens += tokens
        self._forget(now)

    def tokens_in_window(self, now: float) -> int:
        """Tokens used in the last minute (the ``"usage"`` strategy's measure)."""
        self._forget(now)
        return self._recent_tokens

    def _forget(self, now: float) -> None:
        recent, horizon = self._recent, now - _USAGE_WINDOW
        while recent and recent[0][0] <= horizon:
            self._recent_tokens -= recent.popleft()[1]

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "key": self.fingerprint,
            "weight": self.weight,
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "in_flight": self.in_flight,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "last_error": self.last_error,
            "cooling_until": self.cooling_until if self.cooling_until > now else None,
            "cooling_for": _clock.until(self.cooling_until, now),
            "disabled": self.disabled,
        }

    def __repr__(self) -> str:
        return f"PoolKey({self.name!r}, {self.fingerprint})"


class KeyPool(Layer):
    """API keys shared by every function decorated with the pool.

    >>> pool = KeyPool(env="ANTHROPIC_API_KEY", strategy="least-loaded")
    >>> @pool
    ... def ask(messages, *, api_key): ...

    ``keyless=True`` makes a pool of one endpoint, ``"no-key"``, that leaves
    ``param`` unset (see the module docstring); it takes no keys.
    """

    kind = "multiplex"
    policy: MultiplexPolicy

    def __init__(
        self,
        keys: Any = None,
        *,
        env: str | None = None,
        strategy: Any = "round-robin",
        param: str = "api_key",
        max_concurrent_per_key: int | None = None,
        max_wait: float | None = 60.0,
        limits: Mapping[str, float] | None = None,
        cooldown: float = 30.0,
        usage: Callable[[Any], Any] | None = None,
        name: str | None = None,
        dotenv: str | os.PathLike[str] | None = ".env",
        clock: _clock.Clock | None = None,
        keyless: bool = False,
    ) -> None:
        unknown = set(limits or ()) - {"rpm", "tpm"}
        if unknown:
            raise ValueError(f"limits takes 'rpm' and 'tpm', got {', '.join(sorted(unknown))}")
        self.policy = MultiplexPolicy(
            strategy=strategy, param=param, max_concurrent_per_key=max_concurrent_per_key, max_wait=max_wait,
            cooldown=cooldown, usage=usage, **(limits or {}),
        )  # fmt: skip
        self.name = name or (env or f"keys-{id(self):x}")
        self._clock = clock
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # a key's slot was given back (threads wait on it)
        self._waiters = 0  # threads waiting on _freed
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._keys: list[PoolKey] = []
        self._cursor = 0
        self.keyless = keyless
        if keyless:
            if keys is not None or env is not None:
                raise ValueError("keyless: a keyless pool takes no keys= nor env=")
            self._keys = [PoolKey(_NO_KEY, None, 1.0)]
        else:
            entries = _entries(keys)
            if env is not None:
                entries += [(var, key, 1.0) for var, key in keys_from_env(env, dotenv=dotenv)]
            if not entries:
                raise NoKeyAvailableError(
                    "no API key given: pass keys=[...], a dict name -> key, or env='PROVIDER_API_KEY'"
                )
            for key_name, secret, weight in entries:
                self.add_key(secret, name=key_name, weight=weight)
        self.reset_stats()
        self.policy._listen(self._policy_changed)

    @property
    def limits(self) -> dict[str, float]:
        """Each key's own limits, ``{"rpm": ..., "tpm": ...}``; change them through ``policy.rpm`` / ``policy.tpm``."""
        return {kind: limit for kind in ("rpm", "tpm") if (limit := getattr(self.policy, kind)) is not None}

    def __call__(self, fn: F) -> F:
        return self.wrap(fn)

    # ----------------------------------------------------------------- keys

    def add_key(self, key: str, *, name: str | None = None, weight: float = 1.0) -> str:
        """Add a key at runtime; returns the name it is known by in stats."""
        if not isinstance(key, str) or not key:
            raise ValueError("a key must be a non-empty string")
        if self.keyless:
            raise ValueError(f"pool {self.name} is keyless (a server that takes no key): build a pool with keys instead")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"weight must be a number > 0, got {weight!r}")
        entry = PoolKey(name or fingerprint(key), key, float(weight))
        for kind, limit in self.limits.items():
            self._limit(entry, kind, limit)
        with self._lock:
            if any(k._secret == key for k in self._keys):
                raise ValueError(f"key {entry.fingerprint} is already in the pool")
            names = {k.name for k in self._keys}
            base, n = entry.name, 2
            while entry.name in names:
                entry.name, n = f"{base}#{n}", n + 1
            self._keys = [*self._keys, entry]
            self._wake_waiters()
        return entry.name

    def _limit(self, key: PoolKey, kind: str, limit: float | None) -> None:
        """Give ``key`` a per-minute limiter of ``kind`` (``"rpm"``/``"tpm"``), change its rate, or drop it."""
        limiter: RateLimiter | None = getattr(key, kind)
        if limit is None:
            setattr(key, kind, None)
        elif limiter is None:
            setattr(key, kind, RateLimiter(limit, 60.0, mode="raise", name=f"{key.name}:{kind}", clock=self._clock))
        else:
            limiter.policy.calls = limit  # the limiter settles what was earned at the old rate first

    def _policy_changed(self, names: set[str] | frozenset[str]) -> None:
        """A watched field changed: limiters follow, and waiting callers look again under the new rules."""
        for kind in ("rpm", "tpm"):
            if kind in names:
                for key in self._keys:
                    self._limit(key, kind, getattr(self.policy, kind))
        with self._lock:
            self._wake_waiters()

    def remove_key(self, key_or_name: str) -> None:
        """Remove a key (by the key itself or its name) at runtime; calls using it finish normally."""
        with self._lock:
            kept = [k for k in self._keys if k._secret != key_or_name and k.name != key_or_name]
            if len(kept) == len(self._keys):
                raise KeyError(f"no such key in pool {self.name}: {fingerprint(key_or_name)}")
            self._keys = kept

    @property
    def keys(self) -> list[PoolKey]:
        """The pool's keys (their reprs and stats are masked)."""
        return list(self._keys)

    # ----------------------------------------------------------------- choosing

    def checkout(self, tried: set[PoolKey] | frozenset[PoolKey] = frozenset(), last: BaseException | None = None) -> PoolKey:
        """Take a usable key (not disabled, not cooling, under its limits, not in ``tried``), or raise.

        Raises :class:`RateLimitError` with the shortest wait when keys exist
        but are cooling or at their rate limits, :class:`NoKeyAvailableError`
        when every key is disabled, and re-raises ``last`` when every usable
        key was already tried in this call. When every usable key is at
        ``max_concurrent_per_key``, blocks until one is given back (up to
        ``max_wait``).
        """
        with self._lock:
            key = self._take(tried, last)
            return key if key is not None else self._wait_for_slot(tried, last)

    async def acheckout(
        self, tried: set[PoolKey] | frozenset[PoolKey] = frozenset(), last: BaseException | None = None
    ) -> PoolKey:
        """:meth:`checkout` for a task: waits for a slot without blocking its event loop."""
        with self._lock:
            key = self._take(tried, last)
        return key if key is not None else await self._await_slot(tried, last)

    def _take(self, tried: set[PoolKey] | frozenset[PoolKey], last: BaseException | None) -> PoolKey | None:
        """A key now, or ``None`` when every usable key is at its concurrency cap and the caller may wait.

        Raises in every other case; called with the lock held.
        """
        policy = self.policy
        cap = policy.max_concurrent_per_key
        now = _clock.resolve(self._clock).monotonic()
        waits: list[float] = []
        if policy.strategy == "round-robin":
            # The common case walks the keys from the cursor and stops at the first usable one:
            # no candidate list is built on the hot path.
            keys = self._keys
            count, start = len(keys), self._cursor
            for step in range(count):
                key = keys[(start + step) % count]
                if key.disabled is None and key.cooling_until <= now and (cap is None or key.in_flight < cap) and (
                    not tried or key not in tried
                ):
                    wait = self._limit_wait(key) if key.rpm is not None or key.tpm is not None else 0.0
                    if not wait:
                        self._cursor = (start + step + 1) % count
                        return self._grant(key)
                    waits.append(wait)
        else:
            candidates = [
                k for k in self._keys
                if k.disabled is None and k.cooling_until <= now and k not in tried and (cap is None or k.in_flight < cap)
            ]  # fmt: skip
            while candidates:
                key = self._choose(candidates, now)
                wait = self._limit_wait(key) if key.rpm is not None or key.tpm is not None else 0.0
                if not wait:
                    return self._grant(key)
                waits.append(wait)
                candidates.remove(key)
        error = self._none_usable(now, waits, tried, last)
        if error is None:
            if policy.max_wait != 0:
                return None
            error = self._all_busy()
        if error is not last:
            self._exhausted += 1
        raise error

    def _grant(self, key: PoolKey) -> PoolKey:
        key.in_flight += 1
        key.requests += 1
        self._attempts += 1
        return key

    def _wait_for_slot(self, tried: set[PoolKey] | frozenset[PoolKey], last: BaseException | None) -> PoolKey:
        """Block (lock held) until :meth:`_take` gives a key or ``max_wait`` passes."""
        clock = _clock.resolve(self._clock)
        max_wait = self.policy.max_wait
        deadline = None if max_wait is None else clock.monotonic() + max_wait
        self._waiters += 1
        try:
            while True:
                remaining = None if deadline is None else deadline - clock.monotonic()
                if remaining is not None and remaining <= 0:
                    self._exhausted += 1
                    raise self._all_busy()
                self._freed.wait(_clock.wait_slice(clock, remaining))
                # The deadline is looked at again before taking: under a FakeClock a key freed at
                # t=10 must not go to a caller whose max_wait ran out at t=5, however soon it woke.
                if deadline is None or clock.monotonic() < deadline:
                    key = self._take(tried, last)
                    if key is not None:
                        return key
        finally:
            self._waiters -= 1

    async def _await_slot(self, tried: set[PoolKey] | frozenset[PoolKey], last: BaseException | None) -> PoolKey:
        """Await, on the running loop, until :meth:`_take` gives a key or ``max_wait`` passes."""
        clock = _clock.resolve(self._clock)
        max_wait = self.policy.max_wait
        deadline = None if max_wait is None else clock.monotonic() + max_wait
        loop = asyncio.get_running_loop()
        while True:
            remaining = None if deadline is None else deadline - clock.monotonic()
            if remaining is not None and remaining <= 0:
                with self._lock:
                    self._exhausted += 1
                raise self._all_busy()
            future: asyncio.Future[None] = loop.create_future()
            waiter = (loop, future)
            with self._lock:
                key = self._take(tried, last)
                if key is not None:
                    return key
                self._async_waiters.append(waiter)
            try:
                await asyncio.wait((future,), timeout=_clock.wait_slice(clock, remaining))
            finally:
                with self._lock:
                    if waiter in self._async_waiters:
                        self._async_waiters.remove(waiter)

    def _wake_waiters(self) -> None:
        """A slot was given back or a key changed state: every waiter looks again. Lock held."""
        if self._waiters:
            self._freed.notify_all()
        for loop, future in self._async_waiters:
            _clock.wake(loop, future)  # False: its loop is closed and the waiter gone with it; nothing to give on
        self._async_waiters.clear()

    def _choose(self, candidates: list[PoolKey], now: float) -> PoolKey:
        strategy = self.policy.strategy  # round-robin never comes here: _take walks the keys itself
        if strategy == "least-loaded":  # fewest in flight, then fewest requests; a plain loop, no key tuples
            best = candidates[0]
            for k in candidates:
                if k.in_flight < best.in_flight or (k.in_flight == best.in_flight and k.requests < best.requests):
                    best = k
            return best
        if strategy == "weighted":
            total = 0.0
            for k in candidates:
                k._current += k.weight
                total += k.weight
            best = max(candidates, key=lambda k: k._current)
            best._current -= total
            return best
        if strategy == "usage":
            return min(candidates, key=lambda k: (k.tokens_in_window(now), k.requests))
        if callable(strategy):
            chosen = strategy(list(candidates))
            if chosen not in candidates:
                raise ValueError(f"strategy {strategy!r} must return one of the keys it was given")
            return chosen
        return candidates[0]

    @staticmethod
    def _limit_wait(key: PoolKey) -> float:
        if key.tpm is not None:
            wait = key.tpm.try_acquire(0)  # tokens are debited after the answer; in debt means wait
            if wait:
                return wait
        if key.rpm is not None:
            return key.rpm.try_acquire(1)
        return 0.0

    def _none_usable(
        self, now: float, waits: list[float], tried: Any, last: BaseException | None
    ) -> BaseException | None:
        """Why no key can be taken, or ``None`` when every usable key is merely at its concurrency cap."""
        enabled = [k for k in self._keys if k.disabled is None]
        if not enabled:
            reasons = ", ".join(f"{k.name} ({k.disabled})" for k in self._keys) or "none left"
            return _chained(NoKeyAvailableError(f"every key of pool {self.name} is disabled: {reasons}"), last)
        waits += [_clock.until(k.cooling_until, now) for k in enabled if k.cooling_until > now]
        if waits:
            cooling = sum(1 for k in enabled if k.cooling_until > now)
            return _chained(
                RateLimitError(
                    f"no key of pool {self.name} usable now: {cooling} of {len(enabled)} cooling, the rest at their limits",
                    retry_after=min(waits),
                ),
                last,
            )
        if last is not None and all(k in tried for k in enabled):
            return last
        return None

    def _all_busy(self) -> RateLimitError:
        waited = self.policy.max_wait
        return RateLimitError(
            f"every key of pool {self.name} has {self.policy.max_concurrent_per_key} calls in flight"
            + (f" (waited {waited:g}s for one to finish)" if waited else "")
        )

    # ----------------------------------------------------------------- outcomes

    def checkin(self, key: PoolKey, outcome: BaseException | None = None) -> bool:
        """Give ``key`` back with how its call ended; ``True`` when the call may go out on another key."""
        if outcome is None or isinstance(outcome, GeneratorExit):
            self.succeeded(key)
            return False
        # An HTTP-date Retry-After is read on the pool's own clock (a FakeClock passed as clock=).
        info = classify(outcome, now=_clock.resolve(self._clock).time()) if isinstance(outcome, Exception) else None
        with self._lock:
            key.in_flight -= 1
            if self._waiters or self._async_waiters:
                self._wake_waiters()
            if info is None:  # cancelled, interrupted: says nothing about the key
                return False
            key.failures += 1
            key.last_error = info.kind
            if info.kind == "rate_limit":
                seconds = info.retry_after if info.retry_after is not None else self.policy.cooldown
                now = _clock.resolve(self._clock).monotonic()
                key.cooling_until = max(key.cooling_until, now + seconds)
                self._failovers += 1
                move_on = True
            elif info.kind == "auth" and key._secret is not None:  # keyless: the server wants a key; say so, every call
                key.disabled = f"auth ({info.status})" if info.status else "auth"
                self._failovers += 1
                move_on = True
            else:
                return False
        if move_on:
            if key.disabled:
                logger.warning("pool %s: key %s disabled (%s)", self.name, key.name, key.disabled)
            elif logger.isEnabledFor(logging.INFO):
                logger.info("pool %s: key %s rate limited, cooling %.3gs", self.name, key.name, seconds)
        return move_on

    def succeeded(self, key: PoolKey, result: Any = None) -> None:
        """Give ``key`` back after a call that returned ``result`` (a stream: its last chunk with usage).

        The success path of every call: what can be read off the result is
        read before the lock is taken.
        """
        usage, pause = None, 0.0
        try:
            usage = _usage_of(result, self.policy.usage)
            pause = _exhausted_for(result)
        finally:  # a result that cannot be read (a user's usage= raised) still gives its key back
            with self._lock:
                key.in_flight -= 1
                if self._waiters or self._async_waiters:
                    self._wake_waiters()
                key.successes += 1
                if usage is not None or pause:
                    now = _clock.resolve(self._clock).monotonic()
                    if usage is not None:
                        self._count_tokens(key, usage, now)
                    if pause:
                        key.cooling_until = max(key.cooling_until, now + pause)

    def _count_tokens(self, key: PoolKey, usage: tuple[int, int, int], now: float) -> None:
        inp, out, total = usage
        key.input_tokens += inp
        key.output_tokens += out
        key.total_tokens += total
        if total:
            key.record_tokens(now, total)
            if key.tpm is not None:
                key.tpm.debit(total)

    # ----------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now = _clock.resolve(self._clock).monotonic()
            keys = {k.name: k.snapshot(now) for k in self._keys}
            return {
                "keys": keys,
                "available": sum(1 for k in self._keys if k.disabled is None and k.cooling_until <= now),
                "attempts": self._attempts,
                "failovers": self._failovers,
                "exhausted": self._exhausted,
                "in_flight": sum(k.in_flight for k in self._keys),
                "waiting": self._waiters + len(self._async_waiters),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._attempts = self._failovers = self._exhausted = 0
            for k in self._keys:
                k.requests = k.successes = k.failures = 0
                k.input_tokens = k.output_tokens = k.total_tokens = 0

    def __repr__(self) -> str:
        names = ", ".join(f"{k.name}={k.fingerprint}" if k.name != k.fingerprint else k.name for k in self._keys)
        return f"KeyPool(name={self.name!r}, keys=[{names}], strategy={self.policy.strategy!r})"

    # ----------------------------------------------------------------- wrappers
    #
    # One loop per kind of callable: take a key, call, and on a key's own
    # failure take the next; ``checkout`` and ``checkin`` hold the decisions.

    def wrap(self, fn: F) -> F:
        kind = kind_of(fn)
        build = {ASYNC: self._wrap_async, GEN: self._wrap_generator, ASYNC_GEN: self._wrap_async_generator}
        return attach(build.get(kind, self._wrap_sync)(fn), fn, self)  # type: ignore[return-value]

    def _wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        checkout, checkin, succeeded, policy = self.checkout, self.checkin, self.succeeded, self.policy

        def call_with_key(*args: Any, **kwargs: Any) -> Any:
            key = checkout()
            tried: set[PoolKey] = set()
            while True:
                if key._secret is not None:  # a keyless pool's endpoint sends none
                    kwargs[policy.param] = key._secret
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    if not checkin(key, exc):
                        raise
                    tried.add(key)
                    key = checkout(tried, exc)
                    continue
                succeeded(key, result)
                return result

        return call_with_key

    def _wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        checkout, checkin, succeeded, policy = self.acheckout, self.checkin, self.succeeded, self.policy

        async def call_with_key(*args: Any, **kwargs: Any) -> Any:
            key = await checkout()
            tried: set[PoolKey] = set()
            while True:
                if key._secret is not None:  # a keyless pool's endpoint sends none
                    kwargs[policy.param] = key._secret
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    if not checkin(key, exc):
                        raise
                    tried.add(key)
                    key = await checkout(tried, exc)
                    continue
                succeeded(key, result)
                return result

        return call_with_key

    def _wrap_generator(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        checkout, checkin, succeeded, policy = self.checkout, self.checkin, self.succeeded, self.policy

        def stream_with_key(*args: Any, **kwargs: Any) -> Any:
            key = checkout()
            tried: set[PoolKey] = set()
            while True:
                if key._secret is not None:  # a keyless pool's endpoint sends none
                    kwargs[policy.param] = key._secret
                try:
                    stream = fn(*args, **kwargs)  # inside: a call that fails to start gives its key back too
                    chunk = next(stream)
                except StopIteration as end:
                    succeeded(key)
                    return end.value
                except BaseException as exc:
                    if not checkin(key, exc):
                        raise
                    tried.add(key)
                    key = checkout(tried, exc)
                    continue
                break
            # The first chunk arrived: the stream keeps this key until it ends.
            last = None
            try:
                while True:
                    if isinstance(chunk, Mapping) and "usage" in chunk:
                        last = chunk
                    yield chunk
                    chunk = next(stream)
            except StopIteration as end:
                succeeded(key, last)
                return end.value
            except BaseException as exc:
                try:
                    stream.close()
                finally:  # the key is given back even when closing the stream fails
                    checkin(key, exc)
                raise

        return stream_with_key

    def _wrap_async_generator(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        checkout, checkin, succeeded, policy = self.acheckout, self.checkin, self.succeeded, self.policy

        async def stream_with_key(*args: Any, **kwargs: Any) -> Any:
            key = await checkout()
            tried: set[PoolKey] = set()
            while True:
                if key._secret is not None:  # a keyless pool's endpoint sends none
                    kwargs[policy.param] = key._secret
                try:
                    stream = fn(*args, **kwargs)  # inside: a call that fails to start gives its key back too
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    succeeded(key)
                    return
                except BaseException as exc:
                    # A stream whose first step raised has ended: nothing is left to close.
                    if not checkin(key, exc):
                        raise
                    tried.add(key)
                    key = await checkout(tried, exc)
                    continue
                break
            last = None
            try:
                while True:
                    if isinstance(chunk, Mapping) and "usage" in chunk:
                        last = chunk
                    yield chunk
                    chunk = await stream.__anext__()
            except StopAsyncIteration:
                succeeded(key, last)
            except BaseException as exc:
                try:
                    await stream.aclose()
                finally:  # the key is given back even when closing is cancelled or fails
                    checkin(key, exc)
                raise

        return stream_with_key


def multiplex(
    keys: Any = None,
    *,
    env: str | None = None,
    strategy: Any = "round-robin",
    param: str = "api_key",
    max_concurrent_per_key: int | None = None,
    max_wait: float | None = 60.0,
    limits: Mapping[str, float] | None = None,
    cooldown: float = 30.0,
    usage: Callable[[Any], Any] | None = None,
    name: str | None = None,
    dotenv: str | os.PathLike[str] | None = ".env",
    clock: _clock.Clock | None = None,
) -> Callable[[F], F]:
    """Spread the decorated callable's calls over API keys (see the module docstring).

    ``keys`` is a list of keys (optionally ``(key, weight)`` pairs), a dict
    ``name -> key`` (or ``name -> (key, weight)``), or a :class:`KeyPool` to
    share; ``env="ANTHROPIC_API_KEY"`` reads that variable and its numbered
    variants. Keys are loaded now: no key at all is an error at decoration.
    """
    if isinstance(keys, KeyPool):
        return keys.wrap
    pool = KeyPool(
        keys, env=env, strategy=strategy, param=param, max_concurrent_per_key=max_concurrent_per_key, max_wait=max_wait,
        limits=limits, cooldown=cooldown, usage=usage, name=name, dotenv=dotenv, clock=clock,
    )  # fmt: skip
    used = False

    def decorate(fn: F) -> F:
        # Each function gets its own pool, like @circuit; share one by passing a KeyPool.
        nonlocal used
        own = pool
        if used:
            own = KeyPool(
                {k.name: (k._secret, k.weight) for k in pool.keys}, strategy=strategy, param=param,
                max_concurrent_per_key=max_concurrent_per_key, max_wait=max_wait, limits=limits, cooldown=cooldown,
                usage=usage, name=name or pool.name, clock=clock,
            )  # fmt: skip
        used = True
        return own.wrap(fn)

    return decorate


def _entries(keys: Any) -> list[tuple[str | None, str, float]]:
    """``(name, key, weight)`` from the accepted ``keys`` forms."""
    if keys is None:
        return []
    if isinstance(keys, str):
        raise ValueError("keys must be a list or dict of keys, not one string (use keys=[key])")
    items = keys.items() if isinstance(keys, Mapping) else ((None, value) for value in keys)
    entries = []
    for name, value in items:
        weight = 1.0
        if isinstance(value, tuple):
            value, weight = value
        entries.append((name, value, weight))
    return entries


def _exhausted_for(result: Any) -> float:
    """Seconds until the key may be used again, when the provider said it has nothing left.

    Adapters put the provider's rate-limit headers into ``result["rate_limit"]``
    (remaining and limit counts, seconds until the limit is whole again). A key
    with no requests or tokens left cools until one unit is back, which for a
    continuously refilled limit is ``reset / limit``: pacing on what the provider
    says, before it has to answer 429.
    """
    info = result.get("rate_limit") if isinstance(result, dict) else None
    if not isinstance(info, dict):
        return 0.0
    pause = 0.0
    for remaining_field, reset_field, limit_field in _PACING_FIELDS:
        remaining, reset = info.get(remaining_field), info.get(reset_field)
        if remaining is not None and remaining <= 0 and reset:
            pause = max(pause, reset / max(1.0, info.get(limit_field) or 1.0))
    return pause


_PLAIN = frozenset({str, bytes, int, float, bool, list, tuple})
_PACING_FIELDS = tuple((f"remaining_{unit}", f"reset_{unit}", f"limit_{unit}") for unit in ("requests", "tokens"))


def _usage_of(result: Any, extractor: Callable[[Any], Any] | None) -> tuple[int, int, int] | None:
    """(input, output, total) tokens from a result's ``usage`` (dict or SDK object), if any."""
    if result is None:
        return None
    if extractor is not None:
        usage = extractor(result)
    elif type(result) is dict or isinstance(result, Mapping):  # the adapters' plain dicts skip the ABC check
        usage = result.get("usage")
    elif type(result) in _PLAIN:  # no usage to find (and a getattr that misses costs an exception)
        return None
    else:
        usage = getattr(result, "usage", None)
    if usage is None:
        return None
    if type(usage) is dict or isinstance(usage, Mapping):
        inp = usage.get("input_tokens") or usage.get("prompt_tokens") or 0
        out = usage.get("output_tokens") or usage.get("completion_tokens") or 0
        total = usage.get("total_tokens") or inp + out
    else:  # an SDK's usage object
        inp = getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", None) or 0
        out = getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", None) or 0
        total = getattr(usage, "total_tokens", None) or inp + out
    try:
        return int(inp), int(out), int(total)
    except (TypeError, ValueError):
        return None


def _chained(error: BaseException, cause: BaseException | None) -> BaseException:
    if cause is not None:
        error.__cause__ = cause
    return error
