"""Test helpers for calls that wait in another thread or task: reach a state, see it re-read the clock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from resilient.clock import FakeClock

LIMIT = 5.0  # real seconds before a helper declares the other side stuck (a failure, never a hang)


def wait_until(condition: Callable[[], bool], limit: float = LIMIT) -> None:
    """Block until another thread makes ``condition()`` true; fail after ``limit`` real seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.0005)


async def await_until(condition: Callable[[], bool], limit: float = LIMIT) -> None:
    """:func:`wait_until` for a task: yields to the loop until ``condition()`` holds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.0005)


class ReadCountingClock(FakeClock):
    """A FakeClock that counts how often it is read, so a test can tell a timed wait has looked again.

    A timed wait under a FakeClock re-reads the clock every millisecond; after
    ``advance``, two more reads mean the waiter has seen the new time at least
    once, so "still waiting" is then a checked fact, not a guess about timing.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self._reads_lock = threading.Lock()
        self.reads = 0

    def monotonic(self) -> float:
        with self._reads_lock:
            self.reads += 1
        return super().monotonic()

    def advance_and_wait_for_a_look(self, seconds: float) -> None:
        """Advance, then block until the waiter (a thread) has read the clock twice more."""
        self.advance(seconds)
        seen = self.reads
        wait_until(lambda: self.reads >= seen + 2)

    async def aadvance_and_wait_for_a_look(self, seconds: float) -> None:
        """:meth:`advance_and_wait_for_a_look` for a waiter that is a task of the running loop."""
        self.advance(seconds)
        seen = self.reads
        await await_until(lambda: self.reads >= seen + 2)


class InThread:
    """``fn(*args)`` called in a daemon thread of its own: a call that never ends fails the test, not its exit."""

    def __init__(self, fn: Callable[..., object], *args: object) -> None:
        self.outcome: object = None
        self.thread = threading.Thread(target=self._call, args=(fn, args), daemon=True)
        self.thread.start()

    def _call(self, fn: Callable[..., object], args: tuple) -> None:
        try:
            self.outcome = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it, KeyboardInterrupt included
            self.outcome = exc

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def result(self) -> object:
        """What the call returned or raised, once it has ended; fails if it has not within :data:`LIMIT`."""
        self.thread.join(LIMIT)
        assert not self.thread.is_alive(), "the call never ended"
        return self.outcome


def waiting_call(call: Callable[[], object], until: Callable[[], bool]) -> InThread:
    """Start ``call()`` in a thread and return once ``until()`` holds (it is waiting), as an :class:`InThread`."""
    waiter = InThread(call)
    wait_until(until)
    return waiter


class SleepUntilCancelledClock(FakeClock):
    """A FakeClock whose ``asleep`` stays asleep (time frozen) until the task is cancelled."""

    async def asleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


class InterruptedClock(FakeClock):
    """A FakeClock whose first sleep ends in KeyboardInterrupt, as Ctrl-C would; later sleeps are a FakeClock's.

    The interrupt comes once ``interrupt`` is set, so a test can first let a
    thread settle into that sleep; ``at_once=True`` sets it from the start.
    """

    def __init__(self, *, at_once: bool = False) -> None:
        super().__init__()
        self.interrupt = threading.Event()
        if at_once:
            self.interrupt.set()
        self._interrupted = False

    def sleep(self, seconds: float) -> None:
        if not self._interrupted:
            self._interrupted = True
            assert self.interrupt.wait(LIMIT), "nobody interrupted the sleep"
            raise KeyboardInterrupt
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        if not self._interrupted:
            self._interrupted = True
            await await_until(self.interrupt.is_set)  # returns at once, without yielding, when already set
            raise KeyboardInterrupt
        await super().asleep(seconds)
