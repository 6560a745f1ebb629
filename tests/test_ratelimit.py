"""@rate_limited: a token bucket, exact waits under a FakeClock."""

from __future__ import annotations

import asyncio

import pytest
from ratelimit import RateLimitException

from resilient import FakeClock, RateLimitError, classify, describe
from resilient.ratelimit import MemoryBucketState, RateLimiter, RateLimitExceeded, rate_limited
from waiting import InterruptedClock, SleepUntilCancelledClock


def test_a_full_bucket_allows_a_burst_of_calls_without_waiting(fake_clock: FakeClock) -> None:
    @rate_limited(5, 10)
    def call(n: int) -> int:
        return n

    assert [call(n) for n in range(5)] == [0, 1, 2, 3, 4]
    assert fake_clock.sleeps == []


def test_past_the_burst_each_call_waits_for_its_refill(fake_clock: FakeClock) -> None:
    @rate_limited(5, 10)  # one unit every 2 s
    def call() -> None:
        pass

    for _ in range(8):
        call()

    assert fake_clock.sleeps == [2.0, 2.0, 2.0]


def test_the_bucket_refills_continuously(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(10, 10, mode="raise")
    for _ in range(10):
        limiter.acquire()

    fake_clock.advance(3.5)

    assert limiter.available() == pytest.approx(3.5)


def test_no_double_burst_around_a_window_edge(fake_clock: FakeClock) -> None:
    # A fixed-window counter lets 10 pass at t=9.9 and 10 more at t=10.1.
    limiter = RateLimiter(10, 10, mode="raise")
    fake_clock.advance(9.9)
    for _ in range(10):
        limiter.acquire()

    fake_clock.advance(0.2)

    with pytest.raises(RateLimitExceeded):
        limiter.acquire()


def test_raise_mode_gives_the_exact_retry_after(fake_clock: FakeClock) -> None:
    @rate_limited(2, 10, mode="raise")
    def call() -> None:
        pass

    call()
    call()
    fake_clock.advance(1.0)
    with pytest.raises(RateLimitError) as caught:
        call()

    assert caught.value.retry_after == pytest.approx(4.0)
    assert classify(caught.value).kind == "rate_limit" and classify(caught.value).retryable
    assert fake_clock.sleeps == []


def test_the_error_is_also_a_ratelimit_package_exception(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(1, 10, mode="raise")
    limiter.acquire()

    with pytest.raises(RateLimitException) as caught:
        limiter.acquire()

    assert caught.value.period_remaining == pytest.approx(10.0)


def test_a_refused_call_takes_nothing_from_the_bucket(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(1, 10, mode="raise")
    limiter.acquire()
    for _ in range(3):
        with pytest.raises(RateLimitExceeded):
            limiter.acquire()

    fake_clock.advance(10)

    assert limiter.acquire() == 0.0


def test_cost_weighs_a_call_by_its_arguments(fake_clock: FakeClock) -> None:
    @rate_limited(1000, 60, cost=lambda prompt, max_tokens: max_tokens)  # 1000 tokens per minute
    def ask(prompt: str, max_tokens: int) -> str:
        return prompt

    ask("a", max_tokens=800)
    ask("b", max_tokens=400)  # 200 left, 200 missing: 12 s of refill

    assert fake_clock.sleeps == [pytest.approx(12.0)]


def test_a_cost_above_the_capacity_passes_once_the_bucket_is_full(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(10, 10, mode="raise")

    assert limiter.acquire(25) == 0.0
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.acquire(25)
    assert caught.value.retry_after == pytest.approx(25.0)


@pytest.mark.parametrize("cost", [-1, float("inf"), float("nan"), "3", None])
def test_a_cost_that_is_not_a_finite_number_at_least_zero_is_refused(fake_clock: FakeClock, cost: object) -> None:
    # A negative cost would mint tokens, an infinite one drain the bucket for good.
    limiter = RateLimiter(5, 1)

    @rate_limited(5, 1, cost=lambda: cost)
    def call() -> None:
        pass

    for attempt in (lambda: limiter.acquire(cost), lambda: limiter.try_acquire(cost), lambda: limiter.debit(cost), call):
        with pytest.raises(ValueError, match="cost"):
            attempt()
    assert limiter.available() == 5  # nothing was taken
    assert limiter.try_acquire(0) == 0.0  # a zero cost is a valid weight


def test_max_wait_raises_instead_of_sleeping_too_long(fake_clock: FakeClock) -> None:
    @rate_limited(1, 60, max_wait=5)
    def call() -> None:
        pass

    call()
    with pytest.raises(RateLimitExceeded) as caught:
        call()

    assert caught.value.retry_after == pytest.approx(60.0)
    assert fake_clock.sleeps == []


def test_a_shared_limiter_counts_calls_of_every_function(fake_clock: FakeClock) -> None:
    shared = RateLimiter(2, 10, mode="raise")

    @shared
    def a() -> str:
        return "a"

    @rate_limited(limiter=shared)
    def b() -> str:
        return "b"

    assert (a(), b()) == ("a", "b")
    with pytest.raises(RateLimitExceeded):
        a()


def test_policy_changes_apply_to_the_next_call(fake_clock: FakeClock) -> None:
    @rate_limited(1, 10, mode="raise")
    def call() -> None:
        pass

    call()
    call.policy.mode = "wait"
    call()

    assert fake_clock.sleeps == [10.0]
    with pytest.raises(ValueError, match="mode"):
        call.policy.mode = "drop"


def test_lowering_calls_cuts_the_burst_at_once(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(10, 10, mode="raise")
    limiter.acquire()  # 9 left

    limiter.policy.calls = 2  # no time passes before the next calls

    assert limiter.available() == 2.0
    assert [limiter.acquire(), limiter.acquire()] == [0.0, 0.0]
    with pytest.raises(RateLimitExceeded):
        limiter.acquire()


def test_slowing_down_keeps_the_units_already_earned(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(60, 60, mode="raise")  # 1 per second
    for _ in range(60):
        limiter.acquire()
    fake_clock.advance(30)  # 30 units earned at the old rate

    limiter.policy.period = 3600  # 1 per minute from now on

    assert limiter.available() == pytest.approx(30.0)
    assert limiter.acquire() == 0.0
    fake_clock.advance(30)
    assert limiter.available() == pytest.approx(29.5)  # half a minute at the new rate


def test_speeding_up_applies_from_the_change_not_since_the_last_call(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(60, 3600, mode="raise")  # 1 per minute
    for _ in range(60):
        limiter.acquire()
    fake_clock.advance(30)  # half a unit earned

    limiter.policy.update(calls=120, period=60)  # 2 per second from now on

    assert limiter.available() == pytest.approx(0.5)
    with pytest.raises(RateLimitExceeded) as caught:
        limiter.acquire()
    assert caught.value.retry_after == pytest.approx(0.25)


def test_invalid_configuration_raises_at_decoration() -> None:
    with pytest.raises(ValueError, match="calls"):
        rate_limited(0, 10)
    with pytest.raises(ValueError, match="period"):
        rate_limited(10, -1)


async def test_async_calls_wait_through_the_clock(fake_clock: FakeClock) -> None:
    @rate_limited(1, 4)
    async def call(n: int) -> int:
        return n

    assert [await call(n) for n in range(3)] == [0, 1, 2]
    assert fake_clock.sleeps == [4.0, 4.0]


async def test_a_cancelled_wait_gives_its_units_back_and_is_not_admitted() -> None:
    limiter = RateLimiter(1, 60, clock=SleepUntilCancelledClock())
    limiter.acquire()

    waiting = asyncio.create_task(limiter.acquire_async())
    await asyncio.sleep(0)
    assert limiter.available() == -1.0  # the waiter reserved the next unit
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

    assert limiter.available() == 0.0
    stats = limiter.stats()
    assert (stats["admitted"], stats["waited"], stats["waited_seconds"]) == (1, 0, 0.0)


@pytest.mark.parametrize(
    "acquire",
    [RateLimiter.acquire, lambda limiter: limiter.acquire_async().send(None)],  # the coroutine runs to its sleep
    ids=["sync", "async"],
)
def test_an_interrupted_wait_gives_its_units_back_and_is_not_admitted(acquire) -> None:
    limiter = RateLimiter(1, 60, clock=InterruptedClock(at_once=True))
    limiter.acquire()

    with pytest.raises(KeyboardInterrupt):
        acquire(limiter)  # reserves the next unit, then its sleep is interrupted

    assert limiter.available() == 0.0  # not -1: the next caller waits one refill, not two
    stats = limiter.stats()
    assert (stats["admitted"], stats["waited"], stats["waited_seconds"]) == (1, 0, 0.0)


def test_a_stream_is_admitted_when_it_starts(fake_clock: FakeClock) -> None:
    @rate_limited(1, 10, mode="raise")
    def stream():
        yield from (1, 2)

    first, second = stream(), stream()
    assert list(first) == [1, 2]
    with pytest.raises(RateLimitExceeded):
        next(second)


async def test_an_async_stream_waits_before_its_first_chunk(fake_clock: FakeClock) -> None:
    @rate_limited(1, 3)
    async def stream():
        yield "a"

    assert [c async for c in stream()] + [c async for c in stream()] == ["a", "a"]
    assert fake_clock.sleeps == [3.0]


def test_try_acquire_and_debit_serve_a_key_pool(fake_clock: FakeClock) -> None:
    tokens_per_minute = RateLimiter(1000, 60)
    assert tokens_per_minute.try_acquire(0) == 0.0

    tokens_per_minute.debit(1300)  # the answer used more than was left

    assert tokens_per_minute.try_acquire(1) == pytest.approx(18.06, abs=0.01)


def test_stats_count_admitted_waited_and_rejected(fake_clock: FakeClock) -> None:
    @rate_limited(1, 5)
    def call() -> None:
        pass

    call()
    call()
    call.policy.mode = "raise"
    with pytest.raises(RateLimitExceeded):
        call()

    stats = call.stats()
    assert (stats["admitted"], stats["waited"], stats["waited_seconds"], stats["rejected"]) == (2, 1, 5.0, 1)
    assert describe(call)[0]["layer"] == "rate_limit"


def test_the_bucket_state_is_replaceable() -> None:
    state = MemoryBucketState()
    clock = FakeClock()
    a = RateLimiter(1, 10, mode="raise", state=state, clock=clock)
    b = RateLimiter(1, 10, mode="raise", state=state, clock=clock)

    a.acquire()

    with pytest.raises(RateLimitExceeded):
        b.acquire()


def test_bare_decorator_allows_sixty_per_minute(fake_clock: FakeClock) -> None:
    @rate_limited
    def call() -> None:
        pass

    for _ in range(61):
        call()

    assert fake_clock.sleeps == [1.0]
    assert call.policy.calls == 60.0


@pytest.mark.parametrize("start", [12345.678, 1e7, 1.7e9])  # far from zero, where float refills are least exact
@pytest.mark.parametrize(("calls", "period"), [(1, 0.1), (3, 1.0), (7, 0.3), (10, 60.0)])
def test_waiting_exactly_retry_after_is_always_enough(
    fake_clock: FakeClock, calls: float, period: float, start: float
) -> None:
    limiter = RateLimiter(calls, period, mode="raise")
    fake_clock.advance(start)
    refused = 0
    for _ in range(200):
        try:
            limiter.acquire()
        except RateLimitError as exc:
            refused += 1
            fake_clock.advance(exc.retry_after)
            limiter.acquire()  # admitted after exactly the wait it was told, every time

    assert refused == 200 - calls
