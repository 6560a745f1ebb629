"""@batched: concurrent single-item calls become one list call; results, errors and lengths per caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from resilient import ServerError, backoff
from resilient.batched import Batched, BatchedPolicy, BatchLengthError, batched
from resilient.clock import FakeClock, use
from resilient.layer import describe
from waiting import LIMIT, InterruptedClock, InThread, wait_until


def run_threads(fn, items):
    results: dict[int, object] = {}
    start = threading.Barrier(len(items))

    def worker(i, item):
        start.wait()
        try:
            results[i] = fn(item)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i, item)) for i, item in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return [results[i] for i in range(len(items))]


def test_64_threads_are_gathered_into_few_list_calls():
    # A minute's timeout never fires here: every flush is a size flush, and each batch's
    # first caller, waiting for that deadline, must be woken by the caller that fills it.
    calls = []

    @batched(max_batch_size=16, batch_timeout=60)
    def double(items):
        calls.append(list(items))
        return [x * 2 for x in items]

    assert run_threads(double, list(range(64))) == [x * 2 for x in range(64)]
    assert sorted(x for call in calls for x in call) == list(range(64))
    assert len(calls) == 4 and all(len(c) == 16 for c in calls)
    stats = double.stats()
    assert stats == {"batches": 4, "items": 64, "average_batch_size": 16.0, "flush_reasons": {"size": 4}}


async def test_64_tasks_are_gathered_into_few_list_calls():
    calls = []

    @batched(max_batch_size=20, batch_timeout=0.05, clock=FakeClock())  # the last 4 flush at once in fake time
    async def square(items):
        calls.append(list(items))
        await asyncio.sleep(0)
        return [x * x for x in items]

    results = await asyncio.gather(*(square(i) for i in range(64)))
    assert results == [i * i for i in range(64)]
    assert [len(c) for c in calls] == [20, 20, 20, 4]
    assert square.stats()["flush_reasons"] == {"size": 3, "timeout": 1}


def test_a_lone_caller_is_flushed_after_the_timeout_on_the_system_clock():
    @batched(max_batch_size=10, batch_timeout=0.002)
    def echo(items):
        return list(items)

    assert echo("x") == "x"
    assert echo.stats()["flush_reasons"] == {"timeout": 1}


def test_a_lone_thread_is_flushed_at_exactly_the_timeout_on_the_toolkit_clock():
    clock = FakeClock(start=100.0)
    seen = []

    @batched(max_batch_size=10, batch_timeout=0.25)
    def echo(items):
        seen.append((clock.monotonic(), list(items)))
        return list(items)

    with use(clock):
        assert echo("x") == "x"
        assert echo("y") == "y"
    assert seen == [(100.25, ["x"]), (100.5, ["y"])]  # arrival + batch_timeout, in fake time
    assert clock.sleeps == [0.25, 0.25]
    assert echo.stats() == {"batches": 2, "items": 2, "average_batch_size": 1.0, "flush_reasons": {"timeout": 2}}


def test_the_deadline_counts_from_the_first_arrival_with_an_explicit_clock():
    class DescheduledClock(FakeClock):
        """Time moves 0.125 s right after its first reading (the caller was descheduled)."""

        reads = 0

        def monotonic(self):
            now = super().monotonic()
            self.reads += 1
            if self.reads == 1:
                self.advance(0.125)
            return now

    clock = DescheduledClock(start=10.0)
    seen = []

    @batched(max_batch_size=10, batch_timeout=0.5, clock=clock)
    def echo(items):
        seen.append(clock.monotonic())
        return list(items)

    assert echo("x") == "x"
    assert seen == [10.5]  # arrival (10.0) + batch_timeout
    assert clock.sleeps == [0.375]  # only what was left of the 0.5 s


def test_a_full_batch_does_not_wait_for_the_clock():
    clock = FakeClock()

    @batched(max_batch_size=1, batch_timeout=5.0, clock=clock)
    def echo(items):
        return list(items)

    assert [echo(i) for i in range(3)] == [0, 1, 2]
    assert clock.sleeps == [] and clock.monotonic() == 0.0
    assert echo.stats()["flush_reasons"] == {"size": 3}


async def test_a_lone_task_is_flushed_at_exactly_the_timeout_on_the_toolkit_clock():
    clock = FakeClock(start=7.0)
    seen = []

    @batched(max_batch_size=10, batch_timeout=0.25)
    async def echo(items):
        seen.append((clock.monotonic(), list(items)))
        return list(items)

    with use(clock):
        assert await echo("x") == "x"
    assert seen == [(7.25, ["x"])]
    assert clock.sleeps == [0.25]
    assert echo.stats()["flush_reasons"] == {"timeout": 1}


async def test_tasks_joining_later_do_not_move_the_deadline():
    clock = FakeClock()
    seen = []

    @batched(max_batch_size=10, batch_timeout=0.25, clock=clock)
    async def echo(items):
        seen.append((clock.monotonic(), list(items)))
        return list(items)

    first = asyncio.ensure_future(echo("a"))
    await asyncio.sleep(0)  # "a" arrives at 0.0; the batch's flusher is scheduled
    clock.advance(0.125)
    second = asyncio.ensure_future(echo("b"))  # arrives at 0.125, before the flusher runs
    assert await asyncio.gather(first, second) == ["a", "b"]
    assert seen == [(0.25, ["a", "b"])]  # first arrival + batch_timeout, not the second's
    assert clock.sleeps == [0.125]


async def test_a_size_flush_cancels_the_tasks_timeout():
    clock = FakeClock()

    @batched(max_batch_size=2, batch_timeout=5.0, clock=clock)
    async def echo(items):
        return list(items)

    assert await asyncio.gather(echo(1), echo(2)) == [1, 2]
    await asyncio.sleep(0)
    assert clock.sleeps == [] and clock.monotonic() == 0.0
    assert echo.stats()["flush_reasons"] == {"size": 1}


def test_an_error_reaches_every_caller_of_the_batch():
    @batched(max_batch_size=8, batch_timeout=0.5)
    def fail(items):
        raise ConnectionError("provider down")

    outcomes = run_threads(fail, list(range(8)))
    assert all(isinstance(o, ConnectionError) and str(o) == "provider down" for o in outcomes)


def test_each_caller_gets_its_own_copy_of_the_batch_error():
    # With @backoff over the batched function, each caller's "gave up" note and frames stay its own.
    @backoff(max_retries=0)
    @batched(max_batch_size=4, batch_timeout=30)  # the fourth caller fills the batch: no waiting
    def fail(items):
        raise ServerError("provider down", status=500, provider="p")

    outcomes = run_threads(fail, list(range(4)))

    assert len({id(o) for o in outcomes}) == 4
    for o in outcomes:
        assert isinstance(o, ServerError) and (o.message, o.status, o.provider) == ("provider down", 500, "p")
        assert len(o.__notes__) == 1 and "gave up after 1 attempt" in o.__notes__[0]


async def test_each_task_gets_its_own_copy_of_the_batch_error():
    @batched(max_batch_size=3, batch_timeout=0.5)
    async def fail(items):
        raise ServerError("provider down", status=500)

    outcomes = await asyncio.gather(*(fail(x) for x in "abc"), return_exceptions=True)
    assert len({id(o) for o in outcomes}) == 3
    assert all(isinstance(o, ServerError) and o.status == 500 for o in outcomes)


def test_wrong_length_is_an_error_for_all():
    @batched(max_batch_size=4, batch_timeout=0.5)
    def short(items):
        return items[:-1]

    outcomes = run_threads(short, ["a", "b", "c", "d"])
    assert all(isinstance(o, BatchLengthError) for o in outcomes)
    assert "returned 3 results for 4 items" in str(outcomes[0])


async def test_async_error_and_wrong_length_reach_every_task():
    @batched(max_batch_size=4, batch_timeout=0.5)
    async def broken(items):
        if items[0] == "boom":
            raise TimeoutError("slow")
        return [1]

    outcomes = await asyncio.gather(*(broken(x) for x in ["boom", "b", "c", "d"]), return_exceptions=True)
    assert all(isinstance(o, TimeoutError) for o in outcomes)
    outcomes = await asyncio.gather(*(broken(x) for x in ["a", "b", "c", "d"]), return_exceptions=True)
    assert all(isinstance(o, BatchLengthError) for o in outcomes)


def test_batch_calls_the_list_function_directly_and_policy_is_tunable():
    @batched
    def upper(items):
        return [s.upper() for s in items]

    assert upper.batch(["a", "b"]) == ["A", "B"]
    upper.policy.max_batch_size = 1
    assert upper("q") == "Q"
    assert upper.stats()["flush_reasons"] == {"size": 1}
    with pytest.raises(ValueError, match="batch_timeout"):
        upper.policy.batch_timeout = -1
    assert describe(upper)[0]["layer"] == "batched"


def test_one_layer_gathers_for_one_function_and_refuses_a_second():
    def embed(items):
        return [f"vec({i})" for i in items]

    def moderate(items):
        return [f"flag({i})" for i in items]

    layer = Batched(BatchedPolicy(max_batch_size=2, batch_timeout=0.1))
    layer.wrap(embed)

    with pytest.raises(TypeError, match="already gathers for .*embed: give .*moderate its own Batched"):
        layer.wrap(moderate)
    assert layer.wrap(embed).batch(["a"]) == ["vec(a)"]  # the same function again is no second one


def test_a_first_caller_interrupted_while_waiting_hands_the_wait_on_and_its_item_is_not_sent():
    clock = InterruptedClock()
    sent = []

    @batched(max_batch_size=10, batch_timeout=0.25, clock=clock)
    def upper(items):
        sent.append((clock.monotonic(), list(items)))
        return [s.upper() for s in items]

    layer = upper.__resilient_layer__
    first = InThread(upper, "first")
    wait_until(lambda: layer._open is not None)  # it opened the batch and waits for the deadline
    second = InThread(upper, "second")
    wait_until(lambda: len(layer._open.seats) == 2)
    clock.interrupt.set()

    assert isinstance(first.result(), KeyboardInterrupt)
    assert second.result() == "SECOND"
    assert sent == [(0.25, ["second"])]  # at the batch's deadline, without the item nobody waits for
    assert upper("next") == "NEXT"


def test_a_lone_caller_interrupted_while_waiting_leaves_no_batch_behind():
    clock = InterruptedClock(at_once=True)
    sent = []

    @batched(max_batch_size=10, batch_timeout=0.25, clock=clock)
    def upper(items):
        sent.append(list(items))
        return [s.upper() for s in items]

    with pytest.raises(KeyboardInterrupt):
        upper("gone")

    assert InThread(upper, "next").result() == "NEXT"
    assert sent == [["next"]]


def test_lowering_max_batch_size_flushes_waiting_threads_in_lists_of_the_new_size():
    sent = []

    @batched(max_batch_size=10, batch_timeout=60)  # on the system clock: only a size flush ends this in time
    def double(items):
        sent.append(list(items))
        return [x * 2 for x in items]

    layer = double.__resilient_layer__
    calls = []
    for i in range(3):
        calls.append(InThread(double, i))
        wait_until(lambda joined=i + 1: layer._open is not None and len(layer._open.seats) == joined)

    double.policy.max_batch_size = 2

    assert [call.result() for call in calls] == [0, 2, 4]
    assert sent == [[0, 1], [2]]  # never more than the provider's new maximum in one list
    assert double.stats()["flush_reasons"] == {"size": 2}


async def test_lowering_max_batch_size_flushes_waiting_tasks_in_lists_of_the_new_size():
    sent = []

    @batched(max_batch_size=10, batch_timeout=60)
    async def double(items):
        sent.append(list(items))
        return [x * 2 for x in items]

    tasks = [asyncio.ensure_future(double(i)) for i in range(3)]
    await asyncio.sleep(0)  # all three have joined the batch

    double.policy.max_batch_size = 2

    assert await asyncio.wait_for(asyncio.gather(*tasks), LIMIT) == [0, 2, 4]
    assert sent == [[0, 1], [2]]
    assert double.stats()["flush_reasons"] == {"size": 2}


def test_streams_cannot_be_batched():
    with pytest.raises(TypeError, match="stream"):

        @batched
        def stream(items):
            yield from items
