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
