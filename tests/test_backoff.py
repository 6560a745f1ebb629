"""@backoff: exact delays under a FakeClock, for every kind of callable."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random

import pytest
import requests

from resilient import (
    CircuitOpenError,
    FakeClock,
    InvalidRequestError,
    RateLimitError,
    RetryBudget,
    ServerError,
    ThrottleGate,
    backoff,
    clock,
)
from waiting import SleepUntilCancelledClock, await_until


class Flaky:
    """Fails with the given errors, in order, then answers ``"ok"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def server_errors(n: int) -> list[ServerError]:
    return [ServerError("boom", status=500) for _ in range(n)]


def http_error(status: int, **headers: str) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    return requests.HTTPError(f"{status} error", response=response)


# ----------------------------------------------------------------- delays


def test_five_server_errors_sleep_exactly_1_2_4_8_16(fake_clock: FakeClock) -> None:
    flaky = Flaky(*server_errors(6))
    ask = backoff(max_retries=5, initial_delay=1, factor=2, max_delay=16, jitter=None)(flaky)

    with pytest.raises(ServerError):
        ask()

    assert fake_clock.sleeps == [1, 2, 4, 8, 16]
    assert flaky.calls == 6


def test_success_after_retries_returns_the_result(fake_clock: FakeClock) -> None:
    ask = backoff(jitter=None)(Flaky(*server_errors(2)))

    assert ask() == "ok"
    assert fake_clock.sleeps == [1, 2]


def test_delay_is_capped_at_max_delay(fake_clock: FakeClock) -> None:
    ask = backoff(max_retries=6, initial_delay=3, factor=3, max_delay=20, jitter=None)(Flaky(*server_errors(7)))

    with pytest.raises(ServerError):
        ask()

    assert fake_clock.sleeps == [3, 9, 20, 20, 20, 20]


def test_full_jitter_is_uniform_below_the_exponential_delay(fake_clock: FakeClock) -> None:
    ask = backoff(max_retries=3, jitter="full", rng=random.Random(7))(Flaky(*server_errors(4)))
    expected_rng = random.Random(7)

    with pytest.raises(ServerError):
        ask()

    assert fake_clock.sleeps == [expected_rng.uniform(0, d) for d in (1, 2, 4)]


def test_equal_jitter_keeps_at_least_half_the_delay(fake_clock: FakeClock) -> None:
    ask = backoff(max_retries=3, jitter="equal", rng=random.Random(3))(Flaky(*server_errors(4)))
    expected_rng = random.Random(3)

    with pytest.raises(ServerError):
        ask()

    assert fake_clock.sleeps == [d / 2 + expected_rng.uniform(0, d / 2) for d in (1, 2, 4)]


def test_decorrelated_jitter_grows_from_the_previous_delay(fake_clock: FakeClock) -> None:
    ask = backoff(max_retries=4, jitter="decorrelated", initial_delay=1, max_delay=16, rng=random.Random(11))(
        Flaky(*server_errors(5))
    )
    expected_rng, previous, expected = random.Random(11), 1.0, []
    for _ in range(4):
        previous = min(16.0, expected_rng.uniform(1.0, 3 * previous))
        expected.append(previous)

    with pytest.raises(ServerError):
        ask()

    assert fake_clock.sleeps == expected


# ----------------------------------------------------------------- hints


def test_requests_429_with_retry_after_3_waits_exactly_3_seconds(fake_clock: FakeClock) -> None:
    ask = backoff(jitter=None, initial_delay=0.5)(Flaky(http_error(429, **{"retry-after": "3"})))

    assert ask() == "ok"
    assert fake_clock.sleeps == [3]


@pytest.mark.parametrize("installed", [None, -60], ids=["no clock installed", "installed a minute behind"])
@pytest.mark.parametrize("run", ["sync", "async"])
def test_an_http_date_retry_after_is_read_on_the_decorators_own_clock(run: str, installed: float | None) -> None:
    # clock= is an equal alternative to installing a clock: the date is measured against the
    # decorator's own clock's wall time, not the installed one (a minute behind) nor real time
    # (years past the fake wall time, when no clock is installed at all: the repro).
    own = FakeClock(wall=1_700_000_000.0)
    other = FakeClock(wall=own.time() + installed) if installed is not None else None
    retry_at = email.utils.formatdate(own.time() + 7, usegmt=True)
    flaky = Flaky(http_error(429, **{"Retry-After": retry_at}))
    ask = backoff(clock=own, max_retries=1, jitter=None, initial_delay=1)(flaky)

    async def aflaky():
        return flaky()

    with clock.use(other) if other is not None else contextlib.nullcontext():
        if run == "sync":
            assert ask() == "ok"
        else:
            assert asyncio.run(backoff(clock=own, max_retries=1, jitter=None, initial_delay=1)(aflaky)()) == "ok"

    assert own.sleeps == [7.0]
    assert other is None or other.sleeps == []
    assert flaky.calls == 2


def test_a_hint_shorter_than_the_backoff_delay_does_not_shorten_it(fake_clock: FakeClock) -> None:
    ask = backoff(jitter=None, initial_delay=5)(Flaky(RateLimitError("slow", status=429, retry_after=1)))

    assert ask() == "ok"
    assert fake_clock.sleeps == [5]


def test_circuit_open_retry_after_is_waited(fake_clock: FakeClock) -> None:
    ask = backoff(jitter=None)(Flaky(CircuitOpenError("open", retry_after=12.5)))

    assert ask() == "ok"
    assert fake_clock.sleeps == [12.5]


def test_hint_above_max_retry_after_raises_at_once(fake_clock: FakeClock) -> None:
    flaky = Flaky(RateLimitError("come back tomorrow", status=429, retry_after=3600))
    ask = backoff(max_retry_after=120)(flaky)

    with pytest.raises(RateLimitError) as caught:
        ask()

    assert fake_clock.sleeps == []
    assert flaky.calls == 1
    assert caught.value.__notes__ == ["resilient.backoff: gave up after 1 attempt (retry_after_too_long)"]


def test_retry_after_can_be_ignored(fake_clock: FakeClock) -> None:
    ask = backoff(jitter=None, respect_retry_after=False)(Flaky(RateLimitError("x", status=429, retry_after=30)))

    assert ask() == "ok"
    assert fake_clock.sleeps == [1]


# ----------------------------------------------------------------- what is retried


def test_client_errors_are_not_retried(fake_clock: FakeClock) -> None:
    flaky = Flaky(InvalidRequestError("bad", status=400))
    ask = backoff(flaky)

    with pytest.raises(InvalidRequestError):
        ask()

    assert flaky.calls == 1
    assert ask.stats()["gave_up"] == {"not_retryable": 1}


def test_retry_on_exception_types(fake_clock: FakeClock) -> None:
    flaky = Flaky(KeyError("a"), ValueError("b"))
    ask = backoff(retry_on=KeyError, jitter=None)(flaky)

    with pytest.raises(ValueError):
        ask()

    assert flaky.calls == 2
    assert fake_clock.sleeps == [1]


def test_retry_on_predicate(fake_clock: FakeClock) -> None:
    flaky = Flaky(InvalidRequestError("model warming up", status=400))
    ask = backoff(retry_on=lambda exc: "warming" in str(exc), jitter=None)(flaky)

    assert ask() == "ok"
    assert flaky.calls == 2


def test_keyboard_interrupt_is_never_retried(fake_clock: FakeClock) -> None:
    flaky = Flaky(KeyboardInterrupt())
    ask = backoff(retry_on=lambda exc: True)(flaky)

    with pytest.raises(KeyboardInterrupt):
        ask()

    assert flaky.calls == 1


def test_the_original_exception_is_reraised_with_a_note(fake_clock: FakeClock) -> None:
    errors = server_errors(3)
    ask = backoff(max_retries=2)(Flaky(*errors))

    with pytest.raises(ServerError) as caught:
        ask()

    assert caught.value is errors[-1]
    assert caught.value.__notes__ == ["resilient.backoff: gave up after 3 attempts (max_retries)"]


# ----------------------------------------------------------------- deadline, budget, gate


def test_deadline_never_starts_a_sleep_that_ends_past_it(fake_clock: FakeClock) -> None:
    flaky = Flaky(*server_errors(10))
    ask = backoff(max_retries=10, jitter=None, deadline=10)(flaky)

    with pytest.raises(ServerError) as caught:
        ask()

    # 1 + 2 + 4 = 7 s slept; the next sleep (8 s) would end at 15 s > 10 s.
    assert fake_clock.sleeps == [1, 2, 4]
    assert flaky.calls == 4
    assert "(deadline)" in caught.value.__notes__[0]


def test_deadline_counts_time_spent_in_attempts(fake_clock: FakeClock) -> None:
    def slow_failure():
        fake_clock.advance(4)
        raise ServerError("slow", status=500)

    ask = backoff(max_retries=10, jitter=None, deadline=10)(slow_failure)

    with pytest.raises(ServerError):
        ask()

    # attempt 4 s, sleep 1 s, attempt 4 s (9 s used): a 2 s sleep would pass 10 s.
    assert fake_clock.sleeps == [1]


def test_a_deadline_set_while_a_call_retries_applies_to_its_next_retry(fake_clock: FakeClock) -> None:
    @backoff(max_retries=5, initial_delay=10, factor=1, jitter=None)
    def ask():
        if fake_clock.monotonic() == 10:
            ask.policy.deadline = 15  # an operator caps calls while this one is retrying
        raise ServerError("down", status=503)

    with pytest.raises(ServerError) as caught:
        ask()

    # Second attempt at 10 s: another 10 s sleep would end at 20 s, past 15 s.
    assert fake_clock.sleeps == [10]
    assert caught.value.__notes__ == ["resilient.backoff: gave up after 2 attempts (deadline)"]


async def test_a_deadline_set_mid_call_counts_from_the_first_attempt(fake_clock: FakeClock) -> None:
    @backoff(max_retries=5, initial_delay=1, factor=1, jitter=None)
    async def ask():
        fake_clock.advance(4)  # each attempt takes 4 s
        ask.policy.deadline = 9.5
        raise ServerError("slow", status=500)

    with pytest.raises(ServerError):
        await ask()

    # Fails at 4 s (sleep to 5 s), again at 9 s: 9 s since the first attempt began, a 1 s sleep would pass 9.5 s.
    assert fake_clock.sleeps == [1]


def test_retry_budget_refuses_retries_beyond_its_share(fake_clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, ttl=10)
    ask = backoff(max_retries=3, jitter=None, budget=budget)(lambda: (_ for _ in ()).throw(ServerError("x", status=500)))

    with pytest.raises(ServerError) as first:
        ask()  # 1 call in window: 0.5 retries allowed -> none
    assert "(budget)" in first.value.__notes__[0]

    with pytest.raises(ServerError):
        ask()  # 2 calls: one retry allowed
    assert fake_clock.sleeps == [1]
    assert ask.stats()["gave_up"] == {"budget": 2}
    assert budget.stats()["refused"] == 2


def test_retry_budget_window_slides(fake_clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, ttl=10)  # one retry per 10 s window

    assert budget.try_spend() is True
    assert budget.try_spend() is False
    fake_clock.advance(10)
    assert budget.try_spend() is True


@pytest.mark.parametrize("ttl", [0.5, 0, -1, float("nan")])
def test_retry_budget_ttl_under_one_second_is_refused(ttl: float) -> None:
    # Buckets are whole seconds: a shorter window would hold none and never refuse a retry.
    with pytest.raises(ValueError, match="ttl"):
        RetryBudget(ttl=ttl)
    budget = RetryBudget()
    with pytest.raises(ValueError, match="ttl"):
        budget.policy.ttl = ttl


def test_retry_budget_one_second_window_refuses_in_the_same_second(fake_clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=2.0, ttl=1)

    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    fake_clock.advance(1)
    assert budget.try_spend() is True


def test_budget_is_shared_by_functions(fake_clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, ttl=10)
    first = backoff(jitter=None, budget=budget)(Flaky(*server_errors(1)))
    second = backoff(jitter=None, budget=budget)(Flaky(*server_errors(1)))

    assert first() == "ok"
    with pytest.raises(ServerError):
        second()


async def test_a_call_cancelled_while_waiting_to_retry_made_no_retry_and_gives_its_budget_back() -> None:
    own = SleepUntilCancelledClock()
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, ttl=10, clock=own)  # one retry per 10 s

    @backoff(max_retries=3, jitter=None, budget=budget, clock=own)
    async def ask():
        raise ServerError("down", status=503)

    call = asyncio.create_task(ask())  # as asyncio.wait_for would cancel it
    await await_until(lambda: budget.stats()["retries_in_window"] == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    stats = ask.stats()
    assert (stats["retries"], stats["slept"]) == (0, 0.0)
    assert budget.stats()["retries_in_window"] == 0
    assert budget.try_spend() is True  # the next caller still has its retry


async def test_a_call_cancelled_after_its_retry_left_the_window_takes_no_other_callers_retry() -> None:
    budget_clock = FakeClock()
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, ttl=10, clock=budget_clock)  # one retry per 10 s

    @backoff(jitter=None, budget=budget, clock=SleepUntilCancelledClock())
    async def ask():
        raise RateLimitError("slow down", status=429, retry_after=30.0)

    call = asyncio.create_task(ask())  # spends its retry at t=0, then waits 30 s: longer than the window
    await await_until(lambda: budget.stats()["retries_in_window"] == 1)
    budget_clock.advance(20)
    assert budget.try_spend() is True  # another caller's retry at t=20, the one the window allows
    budget_clock.advance(5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    assert budget.stats()["retries_in_window"] == 1  # its own unit had already left the window
    assert budget.try_spend() is False


def test_throttle_gate_makes_other_callers_wait(fake_clock: FakeClock) -> None:
    gate = ThrottleGate()
    limited = backoff(max_retries=0, gate=gate)(Flaky(RateLimitError("slow", status=429)))
    other = backoff(gate=gate)(Flaky())

    with pytest.raises(RateLimitError):
        limited()
    assert other() == "ok"

    assert fake_clock.sleeps == [1.0]
    assert gate.stats()["throttles"] == 1


def test_throttle_gate_escalates_and_caps_then_resets_on_success(fake_clock: FakeClock) -> None:
    gate = ThrottleGate()
    waits = []
    for _ in range(7):
        gate.record_throttle(now=fake_clock.monotonic())
        waits.append(gate.wait_time(fake_clock.monotonic()))
        fake_clock.advance(waits[-1])
    assert waits == [1, 2, 4, 8, 16, 32, 32]

    gate.record_success()
    gate.record_throttle(now=fake_clock.monotonic())
    assert gate.wait_time(fake_clock.monotonic()) == 1


def test_throttle_gate_resets_after_60_quiet_seconds(fake_clock: FakeClock) -> None:
    gate = ThrottleGate()
    gate.record_throttle(now=0.0)
    gate.record_throttle(now=1.0)  # 2 s
    gate.record_throttle(now=62.0)  # more than 60 s after the last one: back to 1 s

    assert gate.wait_time(62.0) == 1


def test_throttle_gate_honours_a_longer_retry_after(fake_clock: FakeClock) -> None:
    gate = ThrottleGate()
    gate.record_throttle(hint=7.0, now=0.0)

    assert gate.wait_time(0.0) == 7


def test_waiting_exactly_the_gates_wait_time_finds_it_open(fake_clock: FakeClock) -> None:
    # 14.118 - 5.563 comes out one float step short of 8.555000000000001: sleeping it would land just before the gate opens.
    gate = ThrottleGate()
    fake_clock.advance(4.975)
    gate.record_throttle(hint=9.143, now=fake_clock.monotonic())
    fake_clock.advance(0.588)
    call = backoff(gate=gate, jitter=None)(Flaky())

    assert (call(), call()) == ("ok", "ok")
    assert fake_clock.sleeps == [8.555000000000001]
    assert gate.stats()["waits"] == 1


# ----------------------------------------------------------------- kinds of callables


async def test_async_function_retries_with_the_same_delays(fake_clock: FakeClock) -> None:
    errors = server_errors(3)

    @backoff(max_retries=5, jitter=None)
    async def ask():
        await asyncio.sleep(0)
        if errors:
            raise errors.pop()
        return "ok"

    assert await ask() == "ok"
    assert fake_clock.sleeps == [1, 2, 4]


def test_generator_is_retried_before_its_first_chunk(fake_clock: FakeClock) -> None:
    errors = server_errors(2)

    @backoff(jitter=None)
    def stream():
        if errors:
            raise errors.pop()
        yield "a"
        yield "b"

    assert list(stream()) == ["a", "b"]
    assert fake_clock.sleeps == [1, 2]


def test_generator_failure_after_first_chunk_propagates(fake_clock: FakeClock) -> None:
    starts = []

    @backoff(jitter=None)
    def stream():
        starts.append(1)
        yield "a"
        raise ServerError("cut", status=502)

    got = []
    with pytest.raises(ServerError):
        for chunk in stream():
            got.append(chunk)

    assert got == ["a"]
    assert starts == [1]
    assert fake_clock.sleeps == []


def test_generator_return_value_passes_through(fake_clock: FakeClock) -> None:
    @backoff
    def stream():
        yield 1
        return "done"

    def consume():
        return (yield from stream())

    gen = consume()
    assert next(gen) == 1
    with pytest.raises(StopIteration) as end:
        next(gen)
    assert end.value.value == "done"


def test_generator_closed_at_its_first_chunk_after_a_retry_closes_the_inner_stream(fake_clock: FakeClock) -> None:
    # The failure outlives the call here, as in a log record: its traceback must not keep the stream open.
    failure = ServerError("boom", status=500)
    errors = [failure]
    closed = []

    @backoff(jitter=None)
    def stream():
        if errors:
            raise errors.pop()
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)  # the key, slot or HTTP response it held goes back

    chunks = stream()
    assert next(chunks) == 1
    chunks.close()

    assert closed == [True]
    assert fake_clock.sleeps == [1]


async def test_async_generator_is_retried_before_its_first_chunk(fake_clock: FakeClock) -> None:
    errors = server_errors(2)

    @backoff(jitter=None)
    async def stream():
        if errors:
            raise errors.pop()
        yield "a"
        yield "b"

    assert [chunk async for chunk in stream()] == ["a", "b"]
    assert fake_clock.sleeps == [1, 2]


async def test_async_generator_failure_after_first_chunk_propagates(fake_clock: FakeClock) -> None:
    @backoff(jitter=None)
    async def stream():
        yield "a"
        raise ServerError("cut", status=502)

    got = []
    with pytest.raises(ServerError):
        async for chunk in stream():
            got.append(chunk)

    assert got == ["a"]
    assert fake_clock.sleeps == []


async def test_async_generator_closed_early_closes_the_inner_stream(fake_clock: FakeClock) -> None:
    closed = []

    async def inner():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    stream = backoff(inner)()
    assert await stream.__anext__() == 1
    await stream.aclose()

    assert closed == [True]


def test_methods_are_decorated(fake_clock: FakeClock) -> None:
    class Client:
        def __init__(self) -> None:
            self.errors = server_errors(1)

        @backoff(jitter=None)
        def ask(self, prompt: str) -> str:
            if self.errors:
                raise self.errors.pop()
            return prompt.upper()

    assert Client().ask("hi") == "HI"
    assert fake_clock.sleeps == [1]


# ----------------------------------------------------------------- policy and stats


def test_policy_is_tunable_at_runtime(fake_clock: FakeClock) -> None:
    flaky = Flaky(*server_errors(10))
    ask = backoff(jitter=None)(flaky)
    ask.policy.max_retries = 2
    ask.policy.initial_delay = 0.5

    with pytest.raises(ServerError):
        ask()

    assert fake_clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_retries", -1), ("max_retries", 1.5), ("initial_delay", -1), ("factor", 0.5), ("jitter", "loud"),
     ("deadline", 0), ("budget", "lots"), ("retry_on", 3), ("max_delay", float("nan"))],
)  # fmt: skip
def test_invalid_policy_values_raise_value_error_naming_the_field(field: str, value: object) -> None:
    ask = backoff(lambda: 1)
    before = getattr(ask.policy, field)

    with pytest.raises(ValueError, match=field):
        setattr(ask.policy, field, value)

    assert getattr(ask.policy, field) == before


def test_invalid_values_are_refused_at_decoration_time() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        backoff(max_retries=-3)


def test_stats_count_calls_attempts_and_sleep(fake_clock: FakeClock) -> None:
    ask = backoff(max_retries=1, jitter=None)(Flaky(*server_errors(3)))

    with pytest.raises(ServerError):
        ask()  # two attempts, gives up
    assert ask() == "ok"  # the last error, one retry, then the answer

    assert ask.stats() == {
        "calls": 2,
        "attempts": 4,
        "retries": 2,
        "successes": 1,
        "failures": 1,
        "slept": 2.0,
        "gave_up": {"max_retries": 1},
    }
    ask.reset_stats()
    assert ask.stats()["calls"] == 0


def test_clock_can_be_given_explicitly() -> None:
    own = FakeClock()
    ask = backoff(jitter=None, clock=own)(Flaky(*server_errors(1)))

    with clock.use(FakeClock()) as other:
        assert ask() == "ok"

    assert own.sleeps == [1]
    assert other.sleeps == []


def test_a_gate_closed_past_the_deadline_fails_the_call_without_sending(fake_clock: FakeClock) -> None:
    gate = ThrottleGate()
    gate.record_throttle(hint=30.0, now=fake_clock.monotonic())
    flaky = Flaky()
    ask = backoff(gate=gate, deadline=10)(flaky)

    with pytest.raises(RateLimitError) as caught:
        ask()

    assert caught.value.retry_after == 30
    assert flaky.calls == 0
    assert fake_clock.sleeps == []
    assert ask.stats()["gave_up"] == {"deadline": 1}


def test_a_retry_after_the_layer_will_not_wait_for_does_not_close_the_gate_for_everyone(fake_clock: FakeClock) -> None:
    # An hour's Retry-After above max_retry_after (120 s): the caller gives up at once, and the gate
    # closes only for its own first escalation step (1 s), not for the hour.
    gate = ThrottleGate()
    limited = backoff(gate=gate)(Flaky(RateLimitError("slow", status=429, retry_after=3600)))
    other = backoff(gate=gate)(Flaky())

    with pytest.raises(RateLimitError):
        limited()
    assert limited.stats()["gave_up"] == {"retry_after_too_long": 1}
    assert gate.wait_time(fake_clock.monotonic()) == 1.0
    assert other() == "ok"
    assert fake_clock.sleeps == [1.0]


def test_a_gate_closed_longer_than_max_retry_after_fails_the_call_without_sending(fake_clock: FakeClock) -> None:
    # Another caller, allowed longer waits, closed the gate for 300 s: this one allows 120 s.
    gate = ThrottleGate()
    gate.record_throttle(hint=300.0, now=fake_clock.monotonic())
    flaky = Flaky()
    ask = backoff(gate=gate)(flaky)

    with pytest.raises(RateLimitError, match="max_retry_after") as caught:
        ask()

    assert caught.value.retry_after == 300
    assert (flaky.calls, fake_clock.sleeps) == (0, [])
    assert ask.stats()["gave_up"] == {"retry_after_too_long": 1}
    again = backoff(gate=gate, max_retry_after=600)(Flaky())
    assert again() == "ok" and fake_clock.sleeps == [300]


@pytest.mark.parametrize(("base_wait", "max_wait"), [(10, 2), (33, 32.0)])
def test_a_throttle_gate_starting_above_its_cap_is_refused(base_wait: float, max_wait: float) -> None:
    with pytest.raises(ValueError, match="base_wait"):
        ThrottleGate(base_wait=base_wait, max_wait=max_wait)
    gate = ThrottleGate()
    with pytest.raises(ValueError, match="base_wait"):
        gate.policy.base_wait = 33
    assert gate.policy.base_wait == 1.0  # a refused change changes nothing
    gate.policy.update(base_wait=50, max_wait=60)  # related fields change together
    assert (gate.policy.base_wait, gate.policy.max_wait) == (50, 60)


def test_a_gate_closed_within_the_deadline_is_waited_before_the_first_attempt(fake_clock: FakeClock) -> None:
    gate = ThrottleGate()
    gate.record_throttle(hint=3.0, now=fake_clock.monotonic())
    ask = backoff(gate=gate, deadline=10)(Flaky())

    assert ask() == "ok"
    assert fake_clock.sleeps == [3]
    assert gate.stats()["waits"] == 1


def test_a_first_wait_at_the_gate_cut_short_is_not_counted_as_a_wait(fake_clock: FakeClock) -> None:
    class InterruptedSleep(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    gate = ThrottleGate()
    gate.record_throttle(hint=3.0, now=fake_clock.monotonic())
    flaky = Flaky()
    ask = backoff(gate=gate, clock=InterruptedSleep())(flaky)

    with pytest.raises(KeyboardInterrupt):
        ask()

    assert flaky.calls == 0
    assert (gate.stats()["waits"], gate.stats()["waited_seconds"]) == (0, 0.0)
