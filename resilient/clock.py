"""The one source of time for the whole toolkit.

Every decorator reads time and waits through a :class:`Clock`, never through
``time`` or ``asyncio`` directly. That single seam is what makes policies
deterministic under test: swap in a :class:`FakeClock` and "five retries with
exponential backoff and a 30 s circuit reset" runs in microseconds while the
test asserts the exact delays that would have been slept.

Which clock is used:

* a decorator given ``clock=`` uses that one;
* otherwise it uses the *current* clock, :data:`SYSTEM` unless a
  :func:`use` block has installed another.

:func:`use` swaps the clock process-wide (like ``stamina.set_testing``), not
per context: a test usually drives decorated calls from worker threads and
several event loops, and all of them must see the fake time. It is meant for
tests; production code never needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time as _time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "FakeClock", "SYSTEM", "current", "use", "resolve"]


@runtime_checkable
class Clock(Protocol):
    """What the toolkit needs from time: read it, and wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations)."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for HTTP dates)."""

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""


class SystemClock:
    """The real clock: :mod:`time` and :func:`asyncio.sleep`."""

    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            _time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that only moves when told to, for fast, exact tests.

    ``sleep`` and ``asleep`` return at once, advance the clock by the amount
    slept and append it to :attr:`sleeps`, so a test asserts
    ``clock.sleeps == [1, 2, 4]``. :meth:`advance` moves time by hand (to
    let a circuit's reset timeout pass, say). Safe to share between threads
    and event loops; ``asleep`` still yields to the event loop once so that
    other tasks run, as a real sleep would let them.

    Each sleeper moves the one shared time by its whole sleep, at once: the
    clock serves one caller's waits exactly, but concurrent sleepers add up
    (two tasks sleeping 5 s and 1 s leave it at 6 s, not 5 s) and return in
    the order they slept, not by deadline. To test concurrent callers, let
    them wait on something else (a slot, a key, a batch) and move time from
    the test with :meth:`advance`; the toolkit's timed waits re-read the
    clock, so they end exactly when it passes their deadline.
    """

    def __init__(self, start: float = 0.0, *, wall: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start)
        self._wall_offset = float(wall) - float(start)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` without recording a sleep."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    @property
    def slept(self) -> float:
        """Total seconds slept through this clock."""
        return sum(self.sleeps)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g}, sleeps={len(self.sleeps)})"


SYSTEM: Clock = SystemClock()
_current: Clock = SYSTEM


def current() -> Clock:
    """The clock in force right now (the one installed by :func:`use`, else :data:`SYSTEM`)."""
    return _current


def resolve(clock: Clock | None) -> Clock:
    """The explicit ``clock`` if one was given, else the current one."""
    return clock if clock is not None else _current


POLL = 0.001
"""Seconds between clock reads of a timed wait under a clock other than the system's.

A FakeClock tells nobody when it is moved, so a thread or task waiting for a
slot with a timeout re-reads it this often; under the system clock the wait
blocks for the whole remaining time and nothing polls.
"""


def until(deadline: float, now: float) -> float:
    """Seconds from ``now`` to ``deadline`` (0 if past), never too few: ``now + result >= deadline``.

    ``deadline - now`` can come out one float step short, so that a caller who
    advances a FakeClock (or sleeps) by exactly the ``retry_after`` it was given
    lands just before the deadline and is refused again with a ``retry_after``
    of ~1e-16. Nudging the difference up an ulp at a time (at most a couple of
    steps) keeps the promise that waiting exactly the hint is enough.
    """
    wait = deadline - now
    if wait <= 0:
        return 0.0
    while now + wait < deadline:
        wait = math.nextafter(wait, math.inf)
    return wait


def wait_slice(clock: Clock, remaining: float | None) -> float | None:
    """How long one wait may block before re-reading ``clock`` (``None``: until woken)."""
    if remaining is None or isinstance(clock, SystemClock):
        return remaining
    return min(remaining, POLL)


def wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> bool:
    """Resolve a waiter's ``future`` (created on ``loop``) from any thread; ``False`` when ``loop`` is closed.

    A closed loop's waiter is gone with it, so whatever it was woken for
    (a slot, a key) is nobody's: the caller passes it on. The closed loop is
    caught, not checked first, since it can close between a check and the call.
    """
    if loop is asyncio._get_running_loop():
        _set_none(future)
        return True
    try:
        loop.call_soon_threadsafe(_set_none, future)
    except RuntimeError:
        return False
    return True


def _set_none(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@contextlib.contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the current clock for every decorated call inside the block.

    Blocks nest; the previous clock comes back on exit, also on error.
    """
    global _current
    previous = _current
    _current = clock
    try:
        yield clock
    finally:
        _current = previous
