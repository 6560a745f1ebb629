"""``@queued``: at most N calls at once, the others waiting in priority order.

A provider account allows so many concurrent requests; going past that buys
429s, not throughput. A :class:`RequestQueue` holds ``max_concurrent`` slots
and up to ``queue_size`` waiters; one more is refused at once with
:class:`~resilient.errors.QueueFullError` (shedding load beats an unbounded
backlog), and a waiter that gets no slot within ``timeout`` leaves the queue
with :class:`~resilient.errors.QueueTimeoutError`. Several functions share
one queue (``queue=``), which is where priorities matter: an interactive
``high`` call overtakes waiting ``low`` batch calls.

Order: lowest :class:`~resilient.priorities.Priority` first, FIFO within one.
Aging keeps low calls from starving: a waiter gains one priority level per
``aging`` seconds of waiting. Because every waiter ages at the same rate, the
order of two waiters never changes while they wait, so each waiter gets a
fixed rank when it arrives, ``arrival time + priority * aging``, and a heap
serves the lowest rank: no re-sorting, no timer. A low call is overtaken only
by high calls that arrive less than ``2 * aging`` seconds after it, and by
normal calls that arrive less than ``aging`` seconds after it.

No polling and no background thread: a thread waits on its own lock, a task
on its own future, and whoever frees a slot hands it directly to the next
waiter (under the queue's lock, so a slot is never lost or given twice) and
wakes it: a thread by releasing its lock, a task through its event loop
(``call_soon_threadsafe`` when that loop runs in another thread). So one
queue serves threads and tasks of any number of event loops together.

Time (arrival, wait timeouts, wait-time stats) is read from the toolkit
clock. With the system clock a timed wait blocks on the lock or future with a
timeout. Another clock (a ``FakeClock``) does not tell anyone when it is
moved, so a timed wait under it re-reads the clock every millisecond: tests
stay exact, production never polls. A slot is never handed to a waiter whose
timeout has run out on the clock, however soon it would have noticed: the
outcome of a FakeClock test does not depend on thread timing.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from . import clock as _clock
from .errors import QueueFullError, QueueTimeoutError
from .guard import guarded
from .layer import Layer, attach, check_target
from .policy import Policy, non_negative_float, non_negative_int, optional, positive_float, positive_int
from .priorities import Priority, as_priority, current_priority

__all__ = ["queued", "RequestQueue", "QueuePolicy", "Priority"]

F = TypeVar("F", bound=Callable[..., Any])

_UNSET: Any = object()
_SAMPLES = 1024  # wait times kept per priority for the percentiles
_PRIORITIES = tuple(Priority)


def _priority(name: str, value: Any) -> Priority:
    try:
        return as_priority(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


class QueuePolicy(Policy):
    """Configuration of a queue; shared by every function that uses it.

    Raising ``max_concurrent`` wakes waiters at once; lowering it lets the
    running calls finish and admits no one until the count is below it.
    Changing ``aging`` (seconds per priority level, ``None``: strict
    priority) re-ranks the calls already waiting by their arrival times, so
    one order holds for all of them. ``priority`` (the default of calls that
    set none) applies to calls that arrive after the change.
    """

    _fields = {
        "max_concurrent": (5, positive_int),
        "queue_size": (100, non_negative_int),
        "timeout": (None, optional(non_negative_float)),
        "priority": (Priority.NORMAL, _priority),
        "aging": (10.0, optional(positive_float)),
    }

    max_concurrent: int
    queue_size: int
    timeout: float | None
    priority: Priority
    aging: float | None

    # Acted on at once: more room admits waiters, a new aging re-ranks them.
    _watched = frozenset({"max_concurrent", "aging"})


class _Waiter:
    """One call waiting for a slot; ``granted`` is decided under the queue's lock."""

    __slots__ = ("priority", "arrived", "deadline", "granted", "abandoned", "lock", "loop", "future")

    def __init__(self, priority: Priority, arrived: float, deadline: float | None) -> None:
        self.priority = priority
        self.arrived = arrived
        self.deadline = deadline  # when its timeout runs out, on the queue's clock; None: never
        self.granted = False
        self.abandoned = False
        self.lock: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[None] | None = None


def _rank(waiter: _Waiter, aging: float | None) -> float:
    """Where a waiter stands in line: its priority, aged by how long it has waited (see the module docstring)."""
    return float(waiter.priority) if aging is None else waiter.arrived + waiter.priority * aging


class RequestQueue(Layer):
    """Slots and a priority wait queue; decorate several functions with one to share it.

    >>> shared = RequestQueue(max_concurrent=5, queue_size=100)
    >>> @queued(priority="high", queue=shared)
    ... def chat(messages): ...
    >>> @queued(priority="low", queue=shared)
    ... def batch(item): ...
    """

    kind = "queue"
    policy: QueuePolicy

    def __init__(
        self,
        max_concurrent: int = 5,
        queue_size: int = 100,
        *,
        timeout: float | None = None,
        priority: Any = Priority.NORMAL,
        aging: float | None = 10.0,
        name: str | None = None,
        clock: _clock.Clock | None = None,
    ) -> None:
        self.policy = QueuePolicy(
            max_concurrent=max_concurrent, queue_size=queue_size, timeout=timeout, priority=priority, aging=aging
        )
        self.name = name or f"queue-{id(self):x}"
        self._clock = clock
        self._lock = threading.Lock()
        self._active = 0
        self._heap: list[tuple[float, int, _Waiter]] = []
        self._live = 0  # waiters in the heap that still want a slot
        self._stale = 0  # abandoned waiters still in the heap
        self._waiting = [0] * len(_PRIORITIES)
        self._seq = itertools.count()
        self._samples: list[deque[float]] = [deque(maxlen=_SAMPLES) for _ in _PRIORITIES]
        self.reset_stats()
        self.policy._listen(self._policy_changed)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` with this queue at the queue's default priority."""
        return _decorate(fn, self, _UNSET, _UNSET)

    # ----------------------------------------------------------------- entering

    def enter(self, priority: Any = None, timeout: Any = _UNSET) -> None:
        """Take a slot, waiting in line if none is free (the calling thread blocks).

        ``priority`` defaults to the context's, then the policy's; ``timeout``
        to the policy's. Every ``enter`` must be paired with one :meth:`leave`.
        """
        p = self._resolve_priority(priority)
        policy = self.policy
        with self._lock:
            if self._active < policy.max_concurrent and not self._live:
                self._active += 1
                self._admitted += 1
                self._samples[p].append(0.0)
                return
            if timeout is _UNSET:
                timeout = policy.timeout
            clock = _clock.resolve(self._clock)
            waiter = self._enqueue(p, clock, timeout)
            waiter.lock = lock = threading.Lock()
            lock.acquire()
        deadline = waiter.deadline  # None: no timeout
        try:
            if deadline is None:
                got = lock.acquire()
            elif isinstance(clock, _clock.SystemClock):
                got = lock.acquire(timeout=timeout)
            else:  # the deadline _dispatch judges the waiter by, not a second clock read
                got = False
                while not got and clock.monotonic() < deadline:
                    got = lock.acquire(timeout=_clock.POLL)
        except BaseException:
            self._give_up(waiter, cancelled=True)
            raise
        if not got:
            self._give_up(waiter, cancelled=False, timeout=timeout)

    async def enter_async(self, priority: Any = None, timeout: Any = _UNSET) -> None:
        """:meth:`enter` for a task: waits without blocking its event loop."""
        p = self._resolve_priority(priority)
        policy = self.policy
        with self._lock:
            if self._active < policy.max_concurrent and not self._live:
                self._active += 1
                self._admitted += 1
                self._samples[p].append(0.0)
                return
            if timeout is _UNSET:
                timeout = policy.timeout
            clock = _clock.resolve(self._clock)
            waiter = self._enqueue(p, clock, timeout)
            waiter.loop = loop = asyncio.get_running_loop()
            waiter.future = future = loop.create_future()
        deadline = waiter.deadline  # None: no timeout
        try:
            if deadline is None:
                await future
            elif isinstance(clock, _clock.SystemClock):
                await asyncio.wait_for(future, timeout)
            else:  # the deadline _dispatch judges the waiter by, not a second clock read
                while not future.done() and clock.monotonic() < deadline:
                    await asyncio.wait((future,), timeout=_clock.POLL)
                if not future.done():
                    raise TimeoutError
        except TimeoutError:
            self._give_up(waiter, cancelled=False, timeout=timeout)
        except BaseException:
            self._give_up(waiter, cancelled=True)
            raise

    def leave(self) -> None:
        """Give a slot back; the best waiter (if any) gets it at once."""
        with self._lock:
            self._active -= 1
            self._completed += 1
            woken = self._dispatch() if self._live else None
        if woken:
            self._wake(woken)

    # ----------------------------------------------------------------- internals

    def _resolve_priority(self, priority: Any) -> Priority:
        if priority is None:
            priority = current_priority()
            if priority is None:
                return self.policy.priority
            return priority
        return as_priority(priority)

    def _enqueue(self, p: Priority, clock: _clock.Clock, timeout: float | None) -> _Waiter:
        """Put a waiter in line, or refuse it. Called with the lock held."""
        policy = self.policy
        if self._live >= policy.queue_size:
            self._rejected += 1
            raise QueueFullError(
                f"queue {self.name} is full: {self._active} running, {self._live} waiting (queue_size={policy.queue_size})"
            )
        now = clock.monotonic()
        waiter = _Waiter(p, now, None if timeout is None else now + timeout)
        heapq.heappush(self._heap, (_rank(waiter, policy.aging), next(self._seq), waiter))
        self._live += 1
        self._waiting[p] += 1
        return waiter

    def _give_up(self, waiter: _Waiter, *, cancelled: bool, timeout: float | None = None) -> None:
        """A waiter stopped waiting (timeout or cancellation); keep or return what it was granted."""
        with self._lock:
            granted = waiter.granted
            if not granted and not waiter.abandoned:  # (a waiter _dispatch found expired is counted already)
                waiter.abandoned = True
                self._live -= 1
                self._stale += 1
                self._waiting[waiter.priority] -= 1
                if cancelled:
                    self._cancelled += 1
                else:
                    self._timed_out += 1
                if self._stale > 64 and self._stale > len(self._heap) // 2:
                    self._heap = [entry for entry in self._heap if not entry[2].abandoned]
                    heapq.heapify(self._heap)
                    self._stale = 0
        if granted and cancelled:
            self.leave()  # the slot arrived just as the caller went away: pass it on
        elif not granted and not cancelled:
            raise QueueTimeoutError(f"no slot in queue {self.name} within {timeout:g}s")
        # granted and timed out at the same moment: the caller keeps the slot.

    def _dispatch(self) -> list[_Waiter]:
        """Hand free slots to the best waiters. Called with the lock held."""
        woken = []
        limit = self.policy.max_concurrent
        now = _clock.resolve(self._clock).monotonic()
        heap = self._heap
        while self._active < limit and self._live:
            waiter = heapq.heappop(heap)[2]
            if waiter.abandoned:
                self._stale -= 1
                continue
            if waiter.deadline is not None and now >= waiter.deadline:
                # Its timeout ran out before this slot was free: under a FakeClock a slot freed at
                # t=10 must not go to a caller whose timeout ended at t=5, however soon it polls.
                # It gives up (its own wait loop raises QueueTimeoutError) and the slot goes on.
                waiter.abandoned = True
                self._live -= 1
                self._waiting[waiter.priority] -= 1
                self._timed_out += 1
                continue
            waiter.granted = True
            self._live -= 1
            self._waiting[waiter.priority] -= 1
            self._active += 1
            self._admitted += 1
            self._samples[waiter.priority].append(now - waiter.arrived)
            woken.append(waiter)
        return woken

    def _wake(self, woken: list[_Waiter]) -> None:
        for waiter in woken:
            if waiter.future is None:
                waiter.lock.release()
            elif not _clock.wake(waiter.loop, waiter.future):  # type: ignore[arg-type]
                self.leave()  # its loop is closed: nobody will use the slot

    def _policy_changed(self, names: set[str] | frozenset[str]) -> None:
        with self._lock:
            if "aging" in names:  # ranks made under the old aging must not mix with new ones
                aging = self.policy.aging
                self._heap = [(_rank(w, aging), seq, w) for _, seq, w in self._heap if not w.abandoned]
                heapq.heapify(self._heap)
                self._stale = 0
            woken = self._dispatch() if self._live else None
        if woken:
            self._wake(woken)

    # ----------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        """A snapshot: occupancy now, counters since the last reset, wait-time percentiles (seconds)."""
        with self._lock:
            samples = [sorted(s) for s in self._samples]
            return {
                "size": self._live,
                "active": self._active,
                "capacity": self.policy.queue_size,
                "max_concurrent": self.policy.max_concurrent,
                "waiting": {p.label: self._waiting[p] for p in _PRIORITIES},
                "admitted": self._admitted,
                "rejected": self._rejected,
                "timed_out": self._timed_out,
                "cancelled": self._cancelled,
                "completed": self._completed,
                "wait_p50": {p.label: _percentile(samples[p], 0.50) for p in _PRIORITIES},
                "wait_p95": {p.label: _percentile(samples[p], 0.95) for p in _PRIORITIES},
            }

    get_queue_info = stats

    def reset_stats(self) -> None:
        with self._lock:
            self._admitted = self._rejected = self._timed_out = self._cancelled = self._completed = 0
            for s in self._samples:
                s.clear()

    def __repr__(self) -> str:
        return (
            f"RequestQueue(name={self.name!r}, active={self._active}/{self.policy.max_concurrent}, "
            f"waiting={self._live}/{self.policy.queue_size})"
        )


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted samples (``None`` without samples)."""
    if not ordered:
        return None
    index = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return ordered[index]


class _Admission:
    """The guard of one decorated function: its own default priority and timeout over a shared queue."""

    __slots__ = ("queue", "priority", "timeout")

    def __init__(self, queue: RequestQueue, priority: Any, timeout: Any) -> None:
        self.queue = queue
        self.priority = None if priority is _UNSET else as_priority(priority)
        self.timeout = timeout

    def _priority(self) -> Priority:
        p = current_priority()
        if p is not None:
            return p
        return self.priority if self.priority is not None else self.queue.policy.priority

    def acquire(self) -> None:
        self.queue.enter(self._priority(), self.timeout)

    async def acquire_async(self) -> None:
        await self.queue.enter_async(self._priority(), self.timeout)

    def release(self, token: None, outcome: BaseException | None) -> None:
        self.queue.leave()


def _decorate(fn: F, queue: RequestQueue, priority: Any, timeout: Any) -> F:
    wrapper = attach(guarded(fn, _Admission(queue, priority, timeout)), fn, queue)
    wrapper.queue = queue  # type: ignore[attr-defined]
    wrapper.get_queue_info = queue.stats  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def queued(
    fn: Any = None,
    /,
    *,
    priority: Any = _UNSET,
    max_concurrent: Any = _UNSET,
    queue_size: Any = _UNSET,
    timeout: Any = _UNSET,
    aging: Any = _UNSET,
    queue: RequestQueue | None = None,
    name: str | None = None,
    clock: _clock.Clock | None = None,
) -> Any:
    """Run the decorated callable through a :class:`RequestQueue` (see the module docstring).

    Use bare (``@queued``) or configured (``@queued(priority="low",
    max_concurrent=5, queue_size=100, timeout=None)``): the function gets its
    own queue, whose policy is ``fn.policy``. With ``queue=`` it shares that
    queue (configure capacity on the queue itself); ``priority`` and
    ``timeout`` are then this function's own defaults. A
    ``with resilient.priority(...)`` block overrides the priority per call.
    """
    check_target("queued", fn)
    if queue is not None:
        clash = [k for k, v in (("max_concurrent", max_concurrent), ("queue_size", queue_size), ("aging", aging)) if v is not _UNSET]
        if clash:
            raise TypeError(f"queued(queue=...) shares that queue's {', '.join(clash)}: set them on the queue")
        if priority is not _UNSET:
            as_priority(priority)
        if timeout is not _UNSET and timeout is not None:
            non_negative_float("timeout", timeout)

        def share(func: F) -> F:
            return _decorate(func, queue, priority, timeout)

        return share(fn) if fn is not None else share

    settings = {
        k: v
        for k, v in (
            ("max_concurrent", max_concurrent),
            ("queue_size", queue_size),
            ("timeout", timeout),
            ("priority", priority),
            ("aging", aging),
        )
        if v is not _UNSET
    }
    QueuePolicy(**settings)  # validate at decoration time

    def decorate(func: F) -> F:
        own = RequestQueue(name=name or getattr(func, "__qualname__", None), clock=clock, **settings)
        return _decorate(func, own, _UNSET, _UNSET)

    return decorate(fn) if fn is not None else decorate
