"""@queued: bounded concurrency in priority order, for threads and tasks alike."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from resilient import FakeClock, QueueFullError, QueueTimeoutError, describe
from resilient.priorities import Priority, as_priority, current_priority, priority
from resilient.queue import RequestQueue, queued
from waiting import LIMIT, ReadCountingClock, wait_until, waiting_call



class Holder:
    """Holds one slot of ``queue`` in a thread until :meth:`release` is called."""

    def __init__(self, queue: RequestQueue) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()

        @queued(queue=queue)
        def hold() -> None:
            self.entered.set()
            self.go.wait(5)

        self.thread = threading.Thread(target=hold)
        self.thread.start()
        assert self.entered.wait(5)

    def release(self) -> None:
        self.go.set()
        self.thread.join(5)


async def yield_to_tasks(times: int = 3) -> None:
    for _ in range(times):
        await asyncio.sleep(0)


# ----------------------------------------------------------------- priorities


def test_priority_names_are_case_insensitive_and_an_int_enum() -> None:
    assert as_priority("HIGH") is Priority.HIGH
    assert as_priority(" Low ") is Priority.LOW
    assert as_priority(1) is Priority.NORMAL
    assert Priority.HIGH < Priority.NORMAL < Priority.LOW


def test_an_unknown_priority_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="priority"):
        as_priority("urgent")
    with pytest.raises(ValueError, match="priority"):
        queued(priority="urgent")


def test_priority_block_sets_and_restores_the_context() -> None:
    assert current_priority() is None
    with priority("high"):
        with priority("low"):
            assert current_priority() is Priority.LOW
        assert current_priority() is Priority.HIGH
    assert current_priority() is None


async def test_priority_block_holds_across_await() -> None:
    with priority("low"):
        await asyncio.sleep(0)
        assert current_priority() is Priority.LOW
        assert await asyncio.create_task(asyncio.sleep(0, result=current_priority())) is Priority.LOW


# ----------------------------------------------------------------- order


async def test_waiters_queued_low_normal_high_run_high_normal_low(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    order: list[str] = []
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    @queued(queue=shared)
    async def work(label: str) -> None:
        order.append(label)

    holder = asyncio.create_task(hold())
    await yield_to_tasks()
    tasks = []
    for label in ("low", "normal", "high"):
        with priority(label):
            tasks.append(asyncio.create_task(work(label)))
        await yield_to_tasks()
    assert shared.stats()["waiting"] == {"high": 1, "normal": 1, "low": 1}

    gate.set()
    await asyncio.gather(holder, *tasks)

    assert order == ["high", "normal", "low"]


async def test_fifo_within_one_priority(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    order: list[int] = []
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    @queued(queue=shared, priority="normal")
    async def work(n: int) -> None:
        order.append(n)

    holder = asyncio.create_task(hold())
    await yield_to_tasks()
    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(work(n)))
        await yield_to_tasks()

    gate.set()
    await asyncio.gather(holder, *tasks)

    assert order == [0, 1, 2, 3, 4]


def test_threads_are_served_in_priority_order(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    order: list[str] = []

    @queued(queue=shared)
    def work(label: str) -> None:
        order.append(label)

    holder = Holder(shared)
    threads = []
    for n, label in enumerate(("low", "low", "normal", "high")):

        def run(label: str = label) -> None:
            with priority(label):
                work(label)

        threads.append(threading.Thread(target=run))
        threads[-1].start()
        wait_until(lambda n=n: shared.stats()["size"] == n + 1)

    holder.release()
    for t in threads:
        t.join(5)

    assert order == ["high", "normal", "low", "low"]


async def test_the_context_priority_overrides_the_function_default(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    order: list[str] = []
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    @queued(queue=shared, priority="low")
    async def batch(label: str) -> None:
        order.append(label)

    holder = asyncio.create_task(hold())
    await yield_to_tasks()
    plain = asyncio.create_task(batch("default-low"))
    await yield_to_tasks()
    with priority("high"):
        urgent = asyncio.create_task(batch("urgent"))
    await yield_to_tasks()

    gate.set()
    await asyncio.gather(holder, plain, urgent)

    assert order == ["urgent", "default-low"]


async def test_functions_sharing_a_queue_share_its_slots(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    order: list[str] = []
    gate = asyncio.Event()

    @queued(queue=shared, priority="low")
    async def batch() -> None:
        order.append("batch")
        await gate.wait()

    @queued(queue=shared, priority="high")
    async def chat() -> None:
        order.append("chat")

    first = asyncio.create_task(batch())
    await yield_to_tasks()
    second = asyncio.create_task(batch())
    await yield_to_tasks()
    interactive = asyncio.create_task(chat())
    await yield_to_tasks()
    assert shared.stats()["active"] == 1 and shared.stats()["size"] == 2

    gate.set()
    await asyncio.gather(first, second, interactive)

    assert order == ["batch", "chat", "batch"]


# ----------------------------------------------------------------- aging


async def test_aging_serves_a_low_waiter_before_high_calls_that_came_much_later(fake_clock: FakeClock) -> None:
    # Ranks: low@0 is 0 + 2 * 10 = 20, high@15 is 15, high@25 is 25.
    order = await _served_order(fake_clock, 10.0, [("low", 0, _KEEP), ("high", 15, _KEEP), ("high", 10, _KEEP)])

    assert order == ["high@15", "low@0", "high@25"]


async def test_without_aging_priority_is_strict(fake_clock: FakeClock) -> None:
    order = await _served_order(fake_clock, None, [("low", 0, _KEEP), ("high", 1000, _KEEP)])

    assert order == ["high@1000", "low@0"]


async def _served_order(fake_clock: FakeClock, aging: float | None, calls: list[tuple[str, float, Any]]) -> list[str]:
    """Order in which ``(priority, seconds to wait first, aging to set before it)`` calls get a one-slot queue.

    Each call is labelled ``priority@arrival`` (fake seconds); a first call holds the slot until all have arrived.
    """
    shared = RequestQueue(max_concurrent=1, aging=aging)
    order: list[str] = []
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    @queued(queue=shared)
    async def work(label: str) -> None:
        order.append(label)

    tasks = [asyncio.create_task(hold())]
    await yield_to_tasks()
    for level, wait, new_aging in calls:
        fake_clock.advance(wait)
        if new_aging is not _KEEP:
            shared.policy.aging = new_aging
        with priority(level):
            tasks.append(asyncio.create_task(work(f"{level}@{fake_clock.monotonic():g}")))
        await yield_to_tasks()
    gate.set()
    await asyncio.gather(*tasks)
    return order


_KEEP = object()


async def test_turning_aging_off_makes_priority_strict_for_calls_already_waiting(fake_clock: FakeClock) -> None:
    fake_clock.advance(1000)
    # high waits from t=1000 (aged rank 1000); strict ranks are 0..2, so a mix would serve low first.
    order = await _served_order(fake_clock, 10.0, [("high", 0, _KEEP), ("low", 5, None)])

    assert order == ["high@1000", "low@1005"]


async def test_turning_aging_on_ages_calls_already_waiting(fake_clock: FakeClock) -> None:
    # low waits from t=0 (strict rank 2); high comes at t=10 with aging 10: low ranks 0 + 2 * 10 = 20, high 10.
    order = await _served_order(fake_clock, None, [("low", 0, _KEEP), ("high", 10, 10.0)])

    assert order == ["high@10", "low@0"]


# ----------------------------------------------------------------- overflow and timeout


def test_one_more_than_queue_size_raises_queue_full_at_once(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1, queue_size=0)
    holder = Holder(shared)

    @queued(queue=shared)
    def work() -> str:
        return "ran"

    with pytest.raises(QueueFullError, match="full"):
        work()
    holder.release()

    assert work() == "ran"
    assert shared.stats()["rejected"] == 1


async def test_a_full_queue_rejects_while_waiters_keep_their_place(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1, queue_size=2)
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    holder = asyncio.create_task(hold())
    await yield_to_tasks()
    waiters = [asyncio.create_task(hold()) for _ in range(2)]
    await yield_to_tasks()

    with pytest.raises(QueueFullError):
        await hold()

    gate.set()
    await asyncio.gather(holder, *waiters)
    assert shared.stats()["admitted"] == 3 and shared.stats()["rejected"] == 1


async def test_async_wait_timeout_raises_and_leaves_the_queue() -> None:
    clock = ReadCountingClock()
    shared = RequestQueue(max_concurrent=1, timeout=5.0, clock=clock)
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    holder = asyncio.create_task(hold())
    await yield_to_tasks()
    waiter = asyncio.create_task(hold())
    await yield_to_tasks()
    assert shared.stats()["size"] == 1

    await clock.aadvance_and_wait_for_a_look(4.999)
    assert not waiter.done()  # not a moment early
    clock.advance(0.001)
    with pytest.raises(QueueTimeoutError, match="5s"):
        await waiter

    stats = shared.stats()
    assert (stats["size"], stats["timed_out"], stats["waiting"]["normal"]) == (0, 1, 0)
    gate.set()
    await holder
    assert shared.stats()["active"] == 0


def test_thread_wait_timeout_raises_and_leaves_the_queue() -> None:
    clock = ReadCountingClock()
    shared = RequestQueue(max_concurrent=1, clock=clock)
    holder = Holder(shared)
    outcome: list[BaseException] = []

    @queued(queue=shared, timeout=3.0)
    def work() -> None:
        pass

    def run() -> None:
        try:
            work()
        except QueueTimeoutError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: shared.stats()["size"] == 1)
    clock.advance_and_wait_for_a_look(2.999)
    assert thread.is_alive() and not outcome  # not a moment early
    clock.advance(0.001)
    thread.join(5)
    holder.release()

    assert len(outcome) == 1
    assert shared.stats()["size"] == 0 and shared.stats()["timed_out"] == 1 and shared.stats()["active"] == 0


def test_timeout_with_the_system_clock_gives_up_and_not_before() -> None:
    # The system clock's branch blocks on the waiter's lock with a timeout (no polling).
    shared = RequestQueue(max_concurrent=1)
    holder = Holder(shared)

    @queued(queue=shared, timeout=0.01)
    def work() -> None:
        pass

    started = time.monotonic()
    with pytest.raises(QueueTimeoutError):
        work()
    holder.release()

    assert time.monotonic() - started >= 0.01


class MovedWhileQueueing(FakeClock):
    """A FakeClock that a test thread advances by ``jump`` just after the next waiter has read its arrival time."""

    def __init__(self, jump: float) -> None:
        super().__init__()
        self.jump = jump
        self.reads: int | None = None  # counted once armed

    def monotonic(self) -> float:
        if self.reads is not None:
            self.reads += 1
            if self.reads == 2:
                self.advance(self.jump)
        return super().monotonic()


def test_a_thread_times_out_at_the_deadline_set_when_it_queued() -> None:
    clock = MovedWhileQueueing(jump=5.0)
    q = RequestQueue(max_concurrent=1, timeout=5, clock=clock)
    q.enter()
    clock.reads = 0
    outcome: list[object] = []

    def waiter() -> None:
        try:
            q.enter()
            outcome.append("admitted")
        except QueueTimeoutError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    thread.join(LIMIT)  # the clock does not move again: a second, later deadline would never pass

    assert not thread.is_alive() and isinstance(outcome[0], QueueTimeoutError)
    q.leave()
    stats = q.stats()
    assert (stats["timed_out"], stats["active"], stats["size"]) == (1, 0, 0)


async def test_a_task_times_out_at_the_deadline_set_when_it_queued() -> None:
    clock = MovedWhileQueueing(jump=5.0)
    q = RequestQueue(max_concurrent=1, timeout=5, clock=clock)
    await q.enter_async()
    clock.reads = 0

    with pytest.raises(QueueTimeoutError):
        await asyncio.wait_for(q.enter_async(), LIMIT)  # a builtin TimeoutError here: it waited for a later deadline

    q.leave()
    stats = q.stats()
    assert (stats["timed_out"], stats["active"], stats["size"]) == (1, 0, 0)


# ----------------------------------------------------------------- cancellation and streams


async def test_cancelling_a_waiting_task_removes_it_from_the_queue(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    holder = asyncio.create_task(hold())
    await yield_to_tasks()
    waiter = asyncio.create_task(hold())
    await yield_to_tasks()

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert shared.stats()["size"] == 0 and shared.stats()["cancelled"] == 1
    gate.set()
    await holder
    assert shared.stats()["active"] == 0 and shared.stats()["admitted"] == 1


async def test_cancelling_a_running_call_frees_its_slot(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)

    @queued(queue=shared)
    async def forever() -> None:
        await asyncio.Event().wait()

    running = asyncio.create_task(forever())
    await yield_to_tasks()
    assert shared.stats()["active"] == 1

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert shared.stats()["active"] == 0


def test_a_stream_holds_its_slot_until_exhausted(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1, queue_size=0)

    @queued(queue=shared)
    def stream():
        yield 1
        yield 2

    chunks = stream()
    assert next(chunks) == 1
    with pytest.raises(QueueFullError):
        list(stream())
    assert list(chunks) == [2]

    assert list(stream()) == [1, 2]
    assert shared.stats()["active"] == 0


def test_a_stream_closed_early_frees_its_slot(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1, queue_size=0)

    @queued(queue=shared)
    def stream():
        yield from range(10)

    chunks = stream()
    next(chunks)
    chunks.close()

    assert shared.stats()["active"] == 0


async def test_an_async_stream_holds_its_slot_until_closed(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1, queue_size=0)

    @queued(queue=shared)
    async def stream():
        for n in range(3):
            yield n

    chunks = stream()
    assert await chunks.__anext__() == 0
    assert shared.stats()["active"] == 1
    await chunks.aclose()

    assert shared.stats()["active"] == 0
    assert [n async for n in stream()] == [0, 1, 2]


async def test_an_async_stream_called_with_wrong_arguments_frees_its_slot(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1, queue_size=0)

    @queued(queue=shared)
    async def stream(prompt):
        yield prompt

    with pytest.raises(TypeError):
        async for _ in stream():  # missing argument: the generator is never created
            pass

    assert shared.stats()["active"] == 0
    assert [chunk async for chunk in stream("ok")] == ["ok"]


async def test_an_async_stream_closed_early_holds_its_slot_until_its_cleanup_ends(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    cleanup_done = asyncio.Event()
    log = []

    @queued(queue=shared)
    async def stream(name):
        log.append(f"{name} open")
        try:
            yield name
            yield name
        finally:
            await cleanup_done.wait()  # e.g. closing the HTTP response
            log.append(f"{name} closed")

    first, second = stream("a"), stream("b")
    assert await first.__anext__() == "a"
    closing = asyncio.create_task(first.aclose())
    waiting = asyncio.create_task(second.__anext__())
    await yield_to_tasks()
    while_a_closes = list(log)
    cleanup_done.set()
    await closing
    assert await waiting == "b"

    assert while_a_closes == ["a open"]  # "b" waited: "a" was not closed yet
    assert log == ["a open", "a closed", "b open"]
    await second.aclose()
    assert shared.stats()["active"] == 0


async def test_an_async_stream_whose_cleanup_is_cancelled_frees_its_slot(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)

    @queued(queue=shared)
    async def stream():
        try:
            yield 1
        finally:
            await asyncio.Event().wait()  # a cleanup that never ends

    chunks = stream()
    await chunks.__anext__()
    closing = asyncio.create_task(chunks.aclose())
    await yield_to_tasks()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing

    assert shared.stats()["active"] == 0


# ----------------------------------------------------------------- threads and loops together


def test_threads_and_tasks_of_two_event_loops_share_one_queue(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    order: list[str] = []
    lock = threading.Lock()

    @queued(queue=shared)
    def sync_work(label: str) -> None:
        with lock:
            order.append(label)

    @queued(queue=shared)
    async def async_work(label: str) -> None:
        with lock:
            order.append(label)

    holder = Holder(shared)
    workers = []

    def in_loop(label: str, level: str) -> None:
        async def main() -> None:
            with priority(level):
                await async_work(label)

        asyncio.run(main())

    def in_thread(label: str, level: str) -> None:
        with priority(level):
            sync_work(label)

    plan = [(in_loop, "loop1-low", "low"), (in_thread, "thread-normal", "normal"), (in_loop, "loop2-high", "high"),
            (in_thread, "thread-high", "high"), (in_loop, "loop3-normal", "normal")]  # fmt: skip
    for n, (target, label, level) in enumerate(plan):
        workers.append(threading.Thread(target=target, args=(label, level)))
        workers[-1].start()
        wait_until(lambda n=n: shared.stats()["size"] == n + 1)

    holder.release()
    for w in workers:
        w.join(5)

    assert order == ["loop2-high", "thread-high", "thread-normal", "loop3-normal", "loop1-low"]
    assert shared.stats()["active"] == 0 and shared.stats()["completed"] == 6


# ----------------------------------------------------------------- runtime tuning


async def test_raising_max_concurrent_wakes_waiters_at_once(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    gate = asyncio.Event()
    started: list[int] = []

    @queued(queue=shared)
    async def work(n: int) -> None:
        started.append(n)
        await gate.wait()

    tasks = [asyncio.create_task(work(n)) for n in range(3)]
    await yield_to_tasks()
    assert started == [0]

    shared.policy.max_concurrent = 3
    await yield_to_tasks()

    assert started == [0, 1, 2]
    gate.set()
    await asyncio.gather(*tasks)


async def test_lowering_max_concurrent_lets_running_calls_finish(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=2)
    gates = [asyncio.Event() for _ in range(3)]
    started: list[int] = []

    @queued(queue=shared)
    async def work(n: int) -> None:
        started.append(n)
        await gates[n].wait()

    tasks = [asyncio.create_task(work(n)) for n in range(3)]
    await yield_to_tasks()
    shared.policy.max_concurrent = 1
    assert shared.stats()["active"] == 2

    gates[0].set()
    await yield_to_tasks()
    assert started == [0, 1]  # one slot left running, which is already the new limit

    gates[1].set()
    await yield_to_tasks()
    assert started == [0, 1, 2]
    gates[2].set()
    await asyncio.gather(*tasks)


def test_policy_is_the_queue_policy_and_validates_on_assignment() -> None:
    @queued(max_concurrent=2, queue_size=3)
    def work() -> None:
        pass

    work.policy.queue_size = 10
    assert work.queue.policy.queue_size == 10
    with pytest.raises(ValueError, match="max_concurrent"):
        work.policy.max_concurrent = 0
    assert work.policy.max_concurrent == 2


def test_a_shared_queue_is_configured_on_the_queue_not_per_function() -> None:
    with pytest.raises(TypeError, match="max_concurrent"):
        queued(queue=RequestQueue(), max_concurrent=3)


# ----------------------------------------------------------------- stats


async def test_stats_report_wait_percentiles_by_priority(fake_clock: FakeClock) -> None:
    shared = RequestQueue(max_concurrent=1)
    gate = asyncio.Event()

    @queued(queue=shared)
    async def hold() -> None:
        await gate.wait()

    @queued(queue=shared, priority="high")
    async def urgent() -> None:
        pass

    holder = asyncio.create_task(hold())
    await yield_to_tasks()
    waiter = asyncio.create_task(urgent())
    await yield_to_tasks()
    fake_clock.advance(3.0)
    gate.set()
    await asyncio.gather(holder, waiter)

    stats = urgent.get_queue_info()
    assert stats["wait_p50"] == {"high": 3.0, "normal": 0.0, "low": None}
    assert stats["wait_p95"]["high"] == 3.0
    assert (stats["admitted"], stats["completed"], stats["active"], stats["size"]) == (2, 2, 0, 0)
    assert (stats["capacity"], stats["max_concurrent"]) == (100, 1)


def test_reset_stats_clears_counters() -> None:
    @queued
    def work() -> None:
        pass

    work()
    work.reset_stats()

    assert work.stats()["admitted"] == 0 and work.stats()["wait_p50"]["normal"] is None


def test_describe_shows_the_queue_layer() -> None:
    @queued(max_concurrent=3)
    def work() -> None:
        pass

    (layer,) = describe(work)
    assert layer["layer"] == "queue"
    assert layer["policy"]["max_concurrent"] == 3
    assert layer["stats"]["active"] == 0


def test_bare_decorator_gives_each_function_its_own_queue() -> None:
    @queued
    def a() -> str:
        return "a"

    @queued
    def b() -> str:
        return "b"

    assert (a(), b()) == ("a", "b")
    assert a.queue is not b.queue and a.policy.max_concurrent == 5


def test_a_slot_freed_after_a_waiters_timeout_does_not_go_to_it(fake_clock: FakeClock) -> None:
    q = RequestQueue(max_concurrent=1, timeout=5)
    q.enter()  # the slot is held

    def enter_and_leave() -> str:
        q.enter()
        q.leave()
        return "admitted"

    waiter = waiting_call(enter_and_leave, until=lambda: q.stats()["size"] == 1)
    fake_clock.advance(10)  # the holder works 10 s, then gives the slot back at once
    q.leave()

    # Decided by the fake clock (timeout at t=5), not by how soon the waiting thread polled.
    assert isinstance(waiter.result(), QueueTimeoutError)
    stats = q.stats()
    assert (stats["timed_out"], stats["active"], stats["size"]) == (1, 0, 0)
