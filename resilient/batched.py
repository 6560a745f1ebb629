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
batch gets the exception; a result list of the wrong length is a
``BatchLengthError`` for all of them. ``fn.batch(items)`` calls the list
function directly.

Threads and asyncio tasks are gathered separately (a batch never mixes an
event loop's tasks with threads, nor two event loops). The gathering wait is
real time by nature: callers must be given the chance to arrive, so it is the
one wait that a ``FakeClock`` does not shorten. The batch call itself runs in
the caller that flushed (a thread) or in a task of the loop (asyncio): no
background thread is started.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from .layer import ASYNC, ASYNC_GEN, GEN, Layer, attach, kind_of
from .policy import Policy, non_negative_float, positive_int

__all__ = ["batched", "Batched", "BatchedPolicy", "BatchLengthError"]

F = TypeVar("F", bound=Callable[..., Any])


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
    """Items gathered so far, and where each caller's outcome goes."""

    __slots__ = ("items", "results", "error", "done", "taken")

    def __init__(self) -> None:
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
        self.timer: asyncio.TimerHandle | None = None


class Batched(Layer):
    """The runtime of one ``@batched`` layer: the open batches and the counters."""

    kind = "batched"
    policy: BatchedPolicy

    def __init__(self, policy: BatchedPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._filled = threading.Condition(self._lock)
        self._open: _Batch | None = None
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
            with self._lock:
                open_batch = self._open
                leader = open_batch is None
                batch = self._open = _Batch() if open_batch is None else open_batch
                batch.items.append(item)
                index = len(batch.items) - 1
                flush: _Batch | None
                if len(batch.items) >= policy.max_batch_size:
                    flush, reason = self._take(batch), "size"
                elif leader:
                    # Wait for the batch to fill (a filler notifies) or for the timeout.
                    self._filled.wait_for(lambda: batch.taken, timeout=policy.batch_timeout)
                    flush, reason = (None, "") if batch.taken else (self._take(batch), "timeout")
                else:
                    flush, reason = None, ""
            if flush is not None:
                self._run(fn, flush, reason)
            else:
                batch.done.wait()
            if batch.error is not None:
                raise batch.error
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
                batch.timer = loop.call_later(policy.batch_timeout, self._flush_async, loop, fn, batch, "timeout")
            future: asyncio.Future[Any] = loop.create_future()
            batch.items.append(item)
            batch.futures.append(future)
            if len(batch.items) >= policy.max_batch_size:
                self._flush_async(loop, fn, batch, "size")
            return await future

        return call_in_batch

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
                    future.set_exception(exc)
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


def batched(fn: Any = None, /, *, max_batch_size: int = 20, batch_timeout: float = 0.1) -> Any:
    """Turn a list function into a single-item one that batches concurrent callers (see the module docstring)."""

    def decorate(func: F) -> F:
        return Batched(BatchedPolicy(max_batch_size=max_batch_size, batch_timeout=batch_timeout)).wrap(func)

    if fn is not None:
        return decorate(fn)
    BatchedPolicy(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
    return decorate
