"""Wrappers for layers that take something before a call and give it back after.

A circuit breaker takes a permission, a queue a slot, a key pool a key; each
must learn how the call ended. :func:`guarded` writes that bracket once for
the four kinds of callable, so every such layer keeps the stream rules of the
decorator contract without repeating them:

* a stream takes its permission when it starts (first ``next``), not when the
  generator object is created, and gives it back once it has ended or been
  closed (an async stream's own cleanup included), or when creating it failed;
* the outcome passed to ``release`` is ``None`` for a normal end, else the
  exception: ``GeneratorExit`` when the consumer closed a stream early,
  ``asyncio.CancelledError`` when an async call was cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

from .layer import ASYNC, ASYNC_GEN, GEN, kind_of

__all__ = ["Guard", "guarded"]

T = TypeVar("T")


class Guard(Protocol[T]):
    def acquire(self) -> T:
        """Take what the call needs (or raise, e.g. ``CircuitOpenError``)."""

    async def acquire_async(self) -> T:
        """The same for a coroutine or async stream (may wait without blocking the loop)."""

    def release(self, token: T, outcome: BaseException | None) -> None:
        """Give it back; ``outcome`` is how the call ended (``None``: normally)."""


def guarded(fn: Callable[..., Any], guard: Guard[Any]) -> Callable[..., Any]:
    """A wrapper of ``fn``'s own kind that brackets every call with ``guard``."""
    kind = kind_of(fn)
    acquire, acquire_async, release = guard.acquire, guard.acquire_async, guard.release

    if kind == ASYNC:

        async def guarded_call(*args: Any, **kwargs: Any) -> Any:
            token = await acquire_async()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                release(token, exc)
                raise
            release(token, None)
            return result

        return guarded_call

    if kind == GEN:

        def guarded_stream(*args: Any, **kwargs: Any) -> Any:
            token = acquire()
            try:
                result = yield from fn(*args, **kwargs)
            except BaseException as exc:
                release(token, exc)
                raise
            release(token, None)
            return result

        return guarded_stream

    if kind == ASYNC_GEN:

        async def guarded_async_stream(*args: Any, **kwargs: Any) -> Any:
            token = await acquire_async()
            try:
                # Created inside the try: a wrong argument raises here, and must give the token back.
                # Closed before the release: its cleanup may await (closing a response), and the
                # slot is held until the stream is closed, not merely abandoned.
                async with aclosing(fn(*args, **kwargs)) as stream:
                    async for chunk in stream:
                        yield chunk
            except BaseException as exc:
                release(token, exc)  # also when aclose() itself raised or was cancelled
                raise
            release(token, None)

        return guarded_async_stream

    def guarded_call_sync(*args: Any, **kwargs: Any) -> Any:
        token = acquire()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            release(token, exc)
            raise
        release(token, None)
        return result

    return guarded_call_sync
