"""The toolkit's one source of time: a real clock, and a fake one that tests drive."""

from __future__ import annotations

import asyncio
import threading

import pytest

from resilient import clock
from resilient.clock import SYSTEM, Clock, FakeClock, SystemClock

# --------------------------------------------------------------------------- FakeClock


def test_fake_clock_starts_at_the_given_monotonic_and_wall_time():
    fake = FakeClock(5.0, wall=1_000.0)
    assert fake.monotonic() == 5.0
    assert fake.time() == 1_000.0
    assert fake.sleeps == []


def test_fake_clock_default_wall_time_is_a_fixed_recent_epoch():
    assert FakeClock().time() == 1_700_000_000.0
    assert FakeClock().monotonic() == 0.0


def test_fake_sleep_returns_at_once_advances_time_and_records_the_sleep():
    fake = FakeClock()
    fake.sleep(1)
    fake.sleep(2.5)
    assert fake.monotonic() == 3.5
    assert fake.time() == 1_700_000_003.5
    assert fake.sleeps == [1.0, 2.5]
    assert fake.slept == 3.5


def test_fake_sleep_records_floats_in_order():
    fake = FakeClock()
    for seconds in (4, 1, 16, 2):
        fake.sleep(seconds)
    assert fake.sleeps == [4.0, 1.0, 16.0, 2.0]
    assert all(type(s) is float for s in fake.sleeps)


def test_fake_sleep_of_a_negative_duration_records_zero_and_does_not_go_back():
    fake = FakeClock(10.0)
    fake.sleep(-3)
    assert fake.sleeps == [0.0]
    assert fake.monotonic() == 10.0


def test_advance_moves_time_without_recording_a_sleep():
    fake = FakeClock()
    fake.advance(30)
    assert fake.monotonic() == 30.0
    assert fake.time() == 1_700_000_030.0
    assert fake.sleeps == []


def test_advance_refuses_to_go_backwards():
    fake = FakeClock()
    with pytest.raises(ValueError, match="-1"):
        fake.advance(-1)
    assert fake.monotonic() == 0.0


async def test_fake_asleep_advances_and_records_like_sleep():
    fake = FakeClock()
    await fake.asleep(2)
    await fake.asleep(0.5)
    assert fake.sleeps == [2.0, 0.5]
    assert fake.monotonic() == 2.5


async def test_fake_asleep_lets_other_tasks_run():
    fake = FakeClock()
    order: list[str] = []

    async def sleeper() -> None:
        order.append("sleeper before")
        await fake.asleep(100)
        order.append("sleeper after")

    async def other() -> None:
        order.append("other")

    await asyncio.gather(sleeper(), other())
    assert order == ["sleeper before", "other", "sleeper after"]
    assert fake.monotonic() == 100.0


async def test_many_tasks_asleep_concurrently_add_up():
    fake = FakeClock()
    await asyncio.gather(*(fake.asleep(1) for _ in range(50)))
    assert fake.sleeps == [1.0] * 50
    assert fake.monotonic() == 50.0


def test_many_threads_sleeping_on_one_fake_clock_lose_no_time():
    fake = FakeClock()
    threads_count, sleeps_each = 16, 500
    start = threading.Barrier(threads_count)

    def worker() -> None:
        start.wait()
        for _ in range(sleeps_each):
            fake.sleep(0.25)  # exact in binary: any lost update shows in the total

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake.sleeps) == threads_count * sleeps_each
    assert fake.monotonic() == threads_count * sleeps_each * 0.25
    assert fake.slept == threads_count * sleeps_each * 0.25


def test_fake_clock_satisfies_the_clock_protocol():
    assert isinstance(FakeClock(), Clock)
    assert isinstance(SystemClock(), Clock)


def test_fake_clock_repr_is_short():
    fake = FakeClock()
    fake.sleep(3)
    assert repr(fake) == "FakeClock(now=3, sleeps=1)"


# --------------------------------------------------------------------------- SystemClock


def test_system_clock_reads_real_time():
    import time

    assert abs(SYSTEM.time() - time.time()) < 5
    first = SYSTEM.monotonic()
    assert SYSTEM.monotonic() >= first


def test_system_clock_sleep_of_zero_or_less_returns_at_once():
    before = SYSTEM.monotonic()
    SYSTEM.sleep(0)
    SYSTEM.sleep(-5)
    assert SYSTEM.monotonic() - before < 0.5


async def test_system_clock_asleep_of_a_negative_duration_returns_at_once():
    await SYSTEM.asleep(-1)


# --------------------------------------------------------------------------- use / current / resolve


def test_current_clock_is_the_system_clock_by_default():
    assert clock.current() is SYSTEM


def test_use_installs_a_clock_for_the_block_and_restores_the_previous_one():
    fake = FakeClock()
    with clock.use(fake) as installed:
        assert installed is fake
        assert clock.current() is fake
    assert clock.current() is SYSTEM


def test_use_blocks_nest():
    outer, inner = FakeClock(), FakeClock()
    with clock.use(outer):
        with clock.use(inner):
            assert clock.current() is inner
        assert clock.current() is outer
    assert clock.current() is SYSTEM


def test_use_restores_the_previous_clock_when_the_block_raises():
    outer, inner = FakeClock(), FakeClock()
    with clock.use(outer):
        with pytest.raises(RuntimeError, match="boom"):
            with clock.use(inner):
                raise RuntimeError("boom")
        assert clock.current() is outer
    assert clock.current() is SYSTEM


def test_use_is_seen_by_other_threads():
    fake = FakeClock()
    seen: list[Clock] = []
    with clock.use(fake):
        thread = threading.Thread(target=lambda: seen.append(clock.current()))
        thread.start()
        thread.join()
    assert seen == [fake]


def test_resolve_prefers_the_explicit_clock():
    explicit, installed = FakeClock(), FakeClock()
    with clock.use(installed):
        assert clock.resolve(explicit) is explicit


def test_resolve_without_a_clock_gives_the_current_one():
    assert clock.resolve(None) is SYSTEM
    fake = FakeClock()
    with clock.use(fake):
        assert clock.resolve(None) is fake


# --------------------------------------------------------------------------- until


def test_until_a_deadline_in_the_future_is_the_difference():
    assert clock.until(12.5, 10.0) == 2.5


def test_until_a_deadline_in_the_past_or_now_is_zero():
    assert clock.until(3.0, 5.0) == 0.0
    assert clock.until(5.0, 5.0) == 0.0


def test_until_no_deadline_at_all_is_zero():
    assert clock.until(float("-inf"), 5.0) == 0.0


def test_until_is_never_one_float_step_short_of_the_deadline():
    # A gate closed at 4.975 for 9.143 s, asked at 5.563: deadline - now is 8.555, and
    # 5.563 + 8.555 lands one step before 14.118; the wait is nudged up that step.
    deadline, now = 4.975 + 9.143, 5.563
    assert now + (deadline - now) < deadline
    wait = clock.until(deadline, now)
    assert wait == 8.555000000000001
    assert now + wait >= deadline


# --------------------------------------------------------------------------- wake


def test_wake_for_a_closed_loop_is_false_and_raises_nothing():
    loop = asyncio.new_event_loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.close()
    assert clock.wake(loop, future) is False
    assert not future.done()


async def test_wake_on_the_running_loop_resolves_the_future_at_once():
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert clock.wake(asyncio.get_running_loop(), future) is True
    assert future.done() and future.result() is None


async def test_wake_from_another_thread_resolves_a_future_on_a_running_loop():
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(clock.wake(loop, future)))
    thread.start()
    await asyncio.wait_for(future, timeout=5)
    thread.join()
    assert woke == [True]
    assert future.result() is None


async def test_wake_of_a_future_already_done_leaves_it_as_it_was():
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    future.cancel()
    assert clock.wake(loop, future) is True
    assert future.cancelled()
