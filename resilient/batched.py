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
``arrival + batch_timeout`` in fake time without waiting for real.
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
    """Configuration of one ``@batched`` layer; both fields can be changed at runtime."""

    _fields = {
        "max_batch_size": (20, positive_int),
        "batch_timeout": (0.1, non_negative_float),
    }

    max_batch_size: int
    batch_timeout: float


class _Batch:
    """Items gathered so far, when the batch is due, and where each caller's outcome goes."""

    __slots__ = ("deadline", "items", "results", "error", "done", "taken")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # clock.monotonic() of the first arrival + batch_timeout
        self.items: list[Any] = []
        self.results: list[Any] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.taken = False


class _LoopBatch:
    __slots__ = ("items", "futures", "timer")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.timer: asyncio.TimerHandle | asyncio.Task[None] | None = None  # what flushes it at the deadline


class Batched(Layer):
    """The runtime of one ``@batched`` layer: the open batches and the counters."""

    kind = "batched"
    policy: BatchedPolicy

    def __init__(self, policy: BatchedPolicy, *, clock: _clock.Clock | None = None) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._filled = threading.Condition(self._lock)
        self._open: _Batch | None = None
        self._lead = _FIRST_LEAD  # how early a timed wait aims (system clock; see _MAX_LEAD)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBatch] = weakref.WeakKeyDictionary()
        self.reset_stats()

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
        wrapper = self._wrap_async(fn) if kind == ASYNC else self._wrap_sync(fn)
        attach(wrapper, fn, self)
        wrapper.batch = fn  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def _wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        policy = self.policy

        def call_in_batch(item: Any) -> Any:
            clock = _clock.resolve(self._clock)
            arrived = clock.monotonic()  # before the lock: waiting for it is part of the latency
            flush: _Batch | None = None
            reason = ""
            with self._lock:
                batch = self._open
                leader = batch is None
                if batch is None:
                    batch = self._open = _Batch(arrived + policy.batch_timeout)
                batch.items.append(item)
                index = len(batch.items) - 1
                if len(batch.items) >= policy.max_batch_size:
                    flush, reason = self._take(batch), "size"
                elif leader and isinstance(clock, _clock.SystemClock):
                    # Wait for the deadline (a caller that fills the batch notifies), aiming
                    # early by the wake-up lateness seen so far so the flush is not late.
                    aim = batch.deadline - min(self._lead, policy.batch_timeout * _LEAD_SHARE)
                    while not batch.taken:
                        remaining = aim - clock.monotonic()
                        if remaining <= 0:
                            flush, reason = self._take(batch), "timeout"
                            break
                        if not self._filled.wait(remaining):
                            late = clock.monotonic() - aim
                            self._lead = min(_MAX_LEAD, max(late, self._lead * _LEAD_DECAY))
            if leader and flush is None and not batch.taken:
                # Another clock (a FakeClock): sleep on it until the deadline.
                clock.sleep(batch.deadline - clock.monotonic())
                with self._lock:
                    if not batch.taken:
                        flush, reason = self._take(batch), "timeout"
            if flush is not None:
                self._run(fn, flush, reason)
            else:
                batch.done.wait()
            if batch.error is not None:
                raise copy_for_caller(batch.error)
            return batch.results[index]  # type: ignore[index]  # set before done

        return call_in_batch

    def _take(self, batch: _Batch) -> _Batch:
        """Close ``batch`` to new items (lock held)."""
        batch.taken = True
        if self._open is batch:
            self._open = None
        self._filled.notify_all()
        return batch

    def _run(self, fn: Callable[..., Any], batch: _Batch, reason: str) -> None:
        self._record(len(batch.items), reason)
        try:
            results = fn(list(batch.items))
            batch.results = _checked(results, len(batch.items), fn)
        except BaseException as exc:  # every caller of the batch learns what happened
            batch.error = exc
        finally:
            batch.done.set()

    def _wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        policy = self.policy

        async def call_in_batch(item: Any) -> Any:
            loop = asyncio.get_running_loop()
            batch = self._loops.get(loop)
            if batch is None:
                batch = self._loops[loop] = _LoopBatch()
                clock = _clock.resolve(self._clock)
                if isinstance(clock, _clock.SystemClock):
                    batch.timer = loop.call_later(policy.batch_timeout, self._flush_async, loop, fn, batch, "timeout")
                else:
                    deadline = clock.monotonic() + policy.batch_timeout
                    batch.timer = loop.create_task(self._flush_at(clock, deadline, loop, fn, batch))
            future: asyncio.Future[Any] = loop.create_future()
            batch.items.append(item)
            batch.futures.append(future)
            if len(batch.items) >= policy.max_batch_size:
                self._flush_async(loop, fn, batch, "size")
            return await future

        return call_in_batch

    async def _flush_at(
        self, clock: _clock.Clock, deadline: float, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], batch: _LoopBatch
    ) -> None:
        """Flush ``batch`` at ``deadline`` on a clock that is not the system one."""
        await clock.asleep(deadline - clock.monotonic())
        batch.timer = None  # this task is ending: nothing to cancel
        self._flush_async(loop, fn, batch, "timeout")

    def _flush_async(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], batch: _LoopBatch, reason: str) -> None:
        if self._loops.get(loop) is not batch:
            return  # already flushed
        del self._loops[loop]
        if batch.timer is not None:
            batch.timer.cancel()
        self._record(len(batch.items), reason)
        loop.create_task(self._run_async(fn, batch))

    async def _run_async(self, fn: Callable[..., Any], batch: _LoopBatch) -> None:
        try:
            results = _checked(await fn(list(batch.items)), len(batch.items), fn)
        except BaseException as exc:
            for future in batch.futures:
                if not future.done():
                    future.set_exception(copy_for_caller(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for future, result in zip(batch.futures, results):
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
