"""``@batched``: gather concurrent single-item calls into one list call.

Decorate a function that takes a list and returns a list of the same length
(an embeddings endpoint, a batch moderation call); callers then call it with
one item and get one result::

    @batched(max_batch_size=32, batch_timeout=0.05)
    def embed(texts): return client.embed(texts)

    vector = embed("hello")        # from many threads or asyncio tasks at once

A batch is flushed when it holds ``max_batch_size`` items, or ``batch_timeout``
seconds after its first item arrived, whichever comes first. Each caller gets
the result at its own position; if the list call raises, every caller of that
batch gets the exception (each its own copy, so that the notes and traceback
one caller's layers add stay its own); a result list of the wrong length is a
``BatchLengthError`` for all of them. ``fn.batch(items)`` calls the list
function directly.

Threads and asyncio tasks are gathered separately (a batch never mixes an
event loop's tasks with threads, nor two event loops). The batch call itself
runs in the caller that flushed (a thread) or in a task of the loop
(asyncio): no background thread is started.

Timing. The deadline is fixed when the first item arrives (``arrival +
batch_timeout`` on the toolkit clock), so no item waits longer than
``batch_timeout`` for company, however many join later ("added latency": from
the call until the list call starts). With the system clock the first caller
(a thread) waits on a condition for the time remaining to the deadline, and a
size flush wakes it at once. A timed wait wakes a little late (timer slack,
scheduling, the GIL: about 0.1 ms, sometimes more), so the thread aims that
much early, by the lateness it has observed (at most 2 ms and a tenth of
``batch_timeout``), and the list call starts by the deadline, not after it. In
asyncio a timer of the loop fires at the deadline (the loop's own resolution,
1 ms with epoll, applies). Under another clock (a ``FakeClock`` in tests) the wait
is a ``sleep``/``asleep`` on that clock until the deadline: with a
``FakeClock`` it returns at once, so a test sees the flush at exactly
``arrival + batch_timeout`` in fake time without waiting for real. That also
means threads do not gather by time under a FakeClock: the first one's wait
ends at once and it flushes alone (tasks do gather: ``asleep`` lets the
others run first). To test gathering from threads, flush by size (the
``max_batch_size``-th caller flushes at once) or use the system clock with a
short ``batch_timeout``.

Runtime changes. Lowering ``max_batch_size`` flushes an open batch that it
now fills at once (reason ``"size"``: a waiting thread or a callback in the
batch's loop takes it), and no list call ever holds more than
``max_batch_size`` items: a batch gathered under a larger size is sent as
several list calls (each one a batch in the stats).

Interrupted callers. A thread interrupted while its batch is still gathering
(``KeyboardInterrupt`` in its wait) leaves it: its item is taken out, since no
one would read its result, and if it was the first caller, the one that waits
for the deadline, the next caller in the batch takes over that wait, so the
others are still flushed at the deadline. A batch left empty is closed. Once
the batch has been taken it is sent as it is, and the interrupted caller's
result is dropped.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from . import clock as _clock
from .errors import copy_for_caller
from .layer import ASYNC, ASYNC_GEN, GEN, Layer, attach, check_target, kind_of
from .policy import Policy, non_negative_float, positive_int

__all__ = ["batched", "Batched", "BatchedPolicy", "BatchLengthError"]

F = TypeVar("F", bound=Callable[..., Any])

# A thread's timed wait ends after its timeout, never before: Linux timer slack
# (50 µs) plus the wake-up and the GIL; measured on 2 shared cores: median 0.11 ms
# late, p99 0.55 ms. Waiting the full timeout thus flushes every timeout batch
# that much after its deadline. So the first caller aims early by the lateness it
# has observed: a decaying maximum of recent wake-ups (so it follows a high
# percentile), capped at _MAX_LEAD and at _LEAD_SHARE of batch_timeout.
_FIRST_LEAD = 0.0005
_MAX_LEAD = 0.002
_LEAD_SHARE = 0.1
_LEAD_DECAY = 0.9


class BatchLengthError(ValueError):
    """The list function returned a different number of results than it was given items."""


class BatchedPolicy(Policy):
    """Configuration of one ``@batched`` layer; both fields can be changed at runtime.

    Lowering ``max_batch_size`` to (or below) the size of a batch still
    gathering flushes that batch at once (reason ``"size"``), and sends it in
    lists of at most the new size. ``batch_timeout`` applies to batches opened
    after the change.
    """

    _fields = {
        "max_batch_size": (20, positive_int),
        "batch_timeout": (0.1, non_negative_float),
    }
    _watched = frozenset({"max_batch_size"})

    max_batch_size: int
    batch_timeout: float


class _Seat:
    """One thread's place in a batch: its item, then its result or the error."""

    __slots__ = ("item", "result", "error")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.result: Any = None
        self.error: BaseException | None = None


class _Batch:
    """Threads' items gathered so far, when the batch is due, and who waits for that."""

    __slots__ = ("deadline", "seats", "leader", "done", "taken")

    def __init__(self, deadline: float, leader: _Seat) -> None:
        self.deadline = deadline  # clock.monotonic() of the first arrival + batch_timeout
        self.seats: list[_Seat] = []
        self.leader: _Seat | None = leader  # the caller that waits for the deadline (None: it left)
        self.done = threading.Event()
        self.taken = False


class _LoopBatch:
    """One event loop's tasks gathered so far: their items, their futures, and the timer of the deadline."""

    __slots__ = ("fn", "items", "futures", "timer")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.items: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.timer: asyncio.TimerHandle | asyncio.Task[None] | None = None  # what flushes it at the deadline


class Batched(Layer):
    """The runtime of one ``@batched`` layer: the open batches and the counters.

    A layer gathers for one list function, since its open batches have no
    room for a second one. To batch another function the same way, give it
    its own ``Batched`` and share the policy instead: ``Batched(policy).wrap(other)``.
    """

    kind = "batched"
    policy: BatchedPolicy

    def __init__(self, policy: BatchedPolicy, *, clock: _clock.Clock | None = None) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()  # guards the open batches (of threads and of every loop) and the counters
        self._filled = threading.Condition(self._lock)
        self._fn: Callable[..., Any] | None = None  # the list function it gathers for (one per layer)
        self._open: _Batch | None = None
        self._lead = _FIRST_LEAD  # how early a timed wait aims (system clock; see _MAX_LEAD)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBatch] = weakref.WeakKeyDictionary()
        self.reset_stats()
        policy._listen(self._size_changed)

    # ----------------------------------------------------------------- stats

    def _record(self, size: int, reason: str) -> None:
        with self._lock:
            self._batches += 1
            self._items += size
            self._reasons[reason] = self._reasons.get(reason, 0) + 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "batches": self._batches,
                "items": self._items,
                "average_batch_size": self._items / self._batches if self._batches else 0.0,
                "flush_reasons": dict(self._reasons),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._batches = self._items = 0
            self._reasons: dict[str, int] = {}

    # ----------------------------------------------------------------- wrappers

    def wrap(self, fn: F) -> F:
        kind = kind_of(fn)
        if kind in (GEN, ASYNC_GEN):
            raise TypeError("@batched needs a function returning a list of results, not a stream")
        if self._fn is not None and fn is not self._fn:
            raise TypeError(
                f"this Batched already gathers for {getattr(self._fn, '__qualname__', self._fn)!s}: "
                f"give {getattr(fn, '__qualname__', fn)!s} its own Batched (it may share the policy)"
            )
        self._fn = fn
        wrapper = self._wrap_async(fn) if kind == ASYNC else self._wrap_sync(fn)
        attach(wrapper, fn, self)
        wrapper.batch = fn  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def _size_changed(self, names: set[str] | frozenset[str]) -> None:
        """``max_batch_size`` changed: a batch it now fills is flushed at once, not at its deadline."""
        with self._lock:
            self._filled.notify_all()  # the threads waiting in the open batch look at its size again
            pending = list(self._loops.items())
        for loop, batch in pending:
            try:
                loop.call_soon_threadsafe(self._flush_if_full, loop, batch)
            except RuntimeError:  # its loop is closed: nothing left there to flush
                pass

    def _wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        policy = self.policy

        def call_in_batch(item: Any) -> Any:
            clock = _clock.resolve(self._clock)
            arrived = clock.monotonic()  # before the lock: waiting for it is part of the latency
            seat = _Seat(item)
            with self._lock:
                batch = self._open
                if batch is None:
                    batch = self._open = _Batch(arrived + policy.batch_timeout, seat)
                batch.seats.append(seat)
                try:
                    reason = self._await_flush(batch, seat, clock)
                except BaseException:  # interrupted (Ctrl-C) while the batch gathers
                    self._withdraw(batch, seat)
                    raise
            if reason is not None:
                self._run(fn, batch, reason)
            else:
                batch.done.wait()
            if seat.error is not None:
                raise copy_for_caller(seat.error)
            return seat.result

        return call_in_batch

    def _await_flush(self, batch: _Batch, seat: _Seat, clock: _clock.Clock) -> str | None:
        """Wait (lock held, released while waiting) until ``batch`` is taken; why, if this caller took it.

        Whoever sees the batch full takes it (the caller that fills it, or any
        caller once ``max_batch_size`` was lowered). The leader waits for the
        deadline and takes it then; when the leader leaves, the next caller
        that wakes leads in its place, so the batch is still flushed on time.
        """
        system = isinstance(clock, _clock.SystemClock)
        slept = False
        while not batch.taken:
            if len(batch.seats) >= self.policy.max_batch_size:
                return self._take(batch, "size")
            if batch.leader is None:
                batch.leader = seat
            if batch.leader is not seat:
                self._filled.wait()  # until the batch is taken, or the lead passes on
            elif slept:
                return self._take(batch, "timeout")
            elif system:
                # Wait for the deadline (a caller that fills the batch notifies), aiming
                # early by the wake-up lateness seen so far so the flush is not late.
                aim = batch.deadline - min(self._lead, self.policy.batch_timeout * _LEAD_SHARE)
                remaining = aim - clock.monotonic()
                if remaining <= 0:
                    return self._take(batch, "timeout")
                if not self._filled.wait(remaining):
                    late = clock.monotonic() - aim
                    self._lead = min(_MAX_LEAD, max(late, self._lead * _LEAD_DECAY))
            else:
                # Another clock (a FakeClock): sleep on it until the deadline, without the lock.
                self._lock.release()
                try:
                    clock.sleep(batch.deadline - clock.monotonic())
                finally:
                    self._lock.acquire()
                slept = True
        return None

    def _take(self, batch: _Batch, reason: str) -> str:
        """Close ``batch`` to new items and wake its waiters (lock held); returns ``reason``."""
        batch.taken = True
        if self._open is batch:
            self._open = None
        self._filled.notify_all()
        return reason

    def _withdraw(self, batch: _Batch, seat: _Seat) -> None:
        """A caller left before its batch was sent (lock held): its item is not sent, its lead passes on.

        Its caller is gone, so the item is taken out rather than sent for a
        result nobody reads. Once the batch is taken it is too late: the item
        goes out with it and its result is dropped.
        """
        if batch.taken:
            return
        batch.seats.remove(seat)
        if not batch.seats:
            self._open = None  # nobody left in it: the next caller opens a new batch
        elif batch.leader is seat:
            batch.leader = None
            self._filled.notify_all()

    def _run(self, fn: Callable[..., Any], batch: _Batch, reason: str) -> None:
        """Send ``batch`` in lists of at most ``max_batch_size`` (it may have been lowered meanwhile)."""
        seats, size = batch.seats, self.policy.max_batch_size
        start = 0
        try:
            for start in range(0, len(seats), size):
                chunk = seats[start : start + size]
                self._record(len(chunk), reason)
                try:
                    results = _checked(fn([seat.item for seat in chunk]), len(chunk), fn)
                except Exception as exc:  # every caller of this list call learns what happened
                    for seat in chunk:
                        seat.error = exc
                else:
                    for seat, result in zip(chunk, results):
                        seat.result = result
        except BaseException as exc:  # interrupted (Ctrl-C): nothing more is sent; the callers not served learn why
            for seat in seats[start:]:
                seat.error = exc
            raise
        finally:
            batch.done.set()

    def _wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        policy = self.policy

        async def call_in_batch(item: Any) -> Any:
            loop = asyncio.get_running_loop()
            with self._lock:  # a change of max_batch_size reads the open batches from another thread
                batch = self._loops.get(loop)
                if batch is None:
                    batch = self._loops[loop] = _LoopBatch(fn)
                    clock = _clock.resolve(self._clock)
                    if isinstance(clock, _clock.SystemClock):
                        batch.timer = loop.call_later(policy.batch_timeout, self._flush_async, loop, batch, "timeout")
                    else:
                        deadline = clock.monotonic() + policy.batch_timeout
                        batch.timer = loop.create_task(self._flush_at(clock, deadline, loop, batch))
            future: asyncio.Future[Any] = loop.create_future()
            batch.items.append(item)
            batch.futures.append(future)
            self._flush_if_full(loop, batch)
            return await future

        return call_in_batch

    async def _flush_at(
        self, clock: _clock.Clock, deadline: float, loop: asyncio.AbstractEventLoop, batch: _LoopBatch
    ) -> None:
        """Flush ``batch`` at ``deadline`` on a clock that is not the system one."""
        await clock.asleep(deadline - clock.monotonic())
        batch.timer = None  # this task is ending: nothing to cancel
        self._flush_async(loop, batch, "timeout")

    def _flush_if_full(self, loop: asyncio.AbstractEventLoop, batch: _LoopBatch) -> None:
        if len(batch.items) >= self.policy.max_batch_size:
            self._flush_async(loop, batch, "size")

    def _flush_async(self, loop: asyncio.AbstractEventLoop, batch: _LoopBatch, reason: str) -> None:
        """Send ``batch`` (in its loop) in lists of at most ``max_batch_size``, each list call a task."""
        with self._lock:
            if self._loops.get(loop) is not batch:
                return  # already flushed
            del self._loops[loop]
        if batch.timer is not None:
            batch.timer.cancel()
        size = self.policy.max_batch_size
        for start in range(0, len(batch.items), size):
            items, futures = batch.items[start : start + size], batch.futures[start : start + size]
            self._record(len(items), reason)
            loop.create_task(self._run_async(batch.fn, items, futures))

    async def _run_async(self, fn: Callable[..., Any], items: list[Any], futures: list[asyncio.Future[Any]]) -> None:
        try:
            results = _checked(await fn(items), len(items), fn)
        except BaseException as exc:
            for future in futures:
                if not future.done():
                    future.set_exception(copy_for_caller(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(futures, results):
            if not future.done():  # a caller may have been cancelled
                future.set_result(result)


def _checked(results: Any, expected: int, fn: Callable[..., Any]) -> list[Any]:
    try:
        results = list(results)
    except TypeError:
        raise BatchLengthError(
            f"batched {getattr(fn, '__qualname__', fn)!s} must return a list, got {type(results).__name__}"
        ) from None
    if len(results) != expected:
        raise BatchLengthError(
            f"batched {getattr(fn, '__qualname__', fn)!s} returned {len(results)} results for {expected} items"
        )
    return results


def batched(
    fn: Any = None, /, *, max_batch_size: int = 20, batch_timeout: float = 0.1, clock: _clock.Clock | None = None
) -> Any:
    """Turn a list function into a single-item one that batches concurrent callers (see the module docstring).

    ``clock`` is the clock the gathering wait runs on (default: the current toolkit clock).
    """
    check_target("batched", fn)

    def decorate(func: F) -> F:
        return Batched(BatchedPolicy(max_batch_size=max_batch_size, batch_timeout=batch_timeout), clock=clock).wrap(func)

    if fn is not None:
        return decorate(fn)
    BatchedPolicy(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
    return decorate
