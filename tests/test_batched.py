"""@batched: concurrent single-item calls become one list call; results, errors and lengths per caller."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from resilient.batched import BatchLengthError, batched
from resilient.layer import describe


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
    calls = []

    @batched(max_batch_size=16, batch_timeout=0.5)
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

    @batched(max_batch_size=20, batch_timeout=0.05)
    async def square(items):
        calls.append(list(items))
        await asyncio.sleep(0)
        return [x * x for x in items]

    results = await asyncio.gather(*(square(i) for i in range(64)))
    assert results == [i * i for i in range(64)]
    assert [len(c) for c in calls] == [20, 20, 20, 4]
    assert square.stats()["flush_reasons"] == {"size": 3, "timeout": 1}


def test_a_lone_caller_is_flushed_after_the_timeout():
    @batched(max_batch_size=10, batch_timeout=0.02)
    def echo(items):
        return list(items)

    started = time.perf_counter()
    assert echo("x") == "x"
    assert 0.015 <= time.perf_counter() - started < 0.5
    assert echo.stats()["flush_reasons"] == {"timeout": 1}


def test_an_error_reaches_every_caller_of_the_batch():
    @batched(max_batch_size=8, batch_timeout=0.5)
    def fail(items):
        raise ConnectionError("provider down")

    outcomes = run_threads(fail, list(range(8)))
    assert all(isinstance(o, ConnectionError) and str(o) == "provider down" for o in outcomes)


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


def test_streams_cannot_be_batched():
    with pytest.raises(TypeError, match="stream"):

        @batched
        def stream(items):
            yield from items
