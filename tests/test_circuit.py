"""@circuit: the state machine under a FakeClock, for every kind of callable."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pybreaker
import pytest

from resilient import (
    AuthenticationError,
    Circuit,
    CircuitOpenError,
    FakeClock,
    InvalidRequestError,
    OverloadedError,
    ProviderTimeout,
    QueueFullError,
    RateLimitError,
    ServerError,
    circuit,
)


def fail(exc: BaseException):
    def call(*args, **kwargs):
        raise exc

    return call


def trip(fn, times: int, exc: BaseException | None = None) -> None:
    for _ in range(times):
        with pytest.raises(Exception):
            fn(exc or ServerError("down", status=500))


@pytest.fixture
def breaker(fake_clock: FakeClock) -> Circuit:
    return Circuit(fail_max=3, reset_timeout=30, name="test")


@pytest.fixture
def call(breaker: Circuit):
    @breaker
    def call(outcome: BaseException | None = None) -> str:
        if outcome is not None:
            raise outcome
        return "ok"

    return call


# ----------------------------------------------------------------- opening


def test_opens_after_fail_max_consecutive_failures(breaker: Circuit, call) -> None:
    trip(call, 2)
    assert breaker.state == "closed"

    trip(call, 1)

    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        call()


def test_a_success_resets_the_consecutive_count(breaker: Circuit, call) -> None:
    trip(call, 2)
    assert call() == "ok"
    trip(call, 2)

    assert breaker.state == "closed"


def test_open_circuit_says_how_long_until_a_probe(fake_clock: FakeClock, breaker: Circuit, call) -> None:
    trip(call, 3)
    fake_clock.advance(12)

    with pytest.raises(CircuitOpenError) as caught:
        call()

    assert caught.value.retry_after == 18
    assert breaker.stats()["rejected"] == 1


@pytest.mark.parametrize(
    ("start", "elapsed", "reset_timeout"),
    [(0.1, 0.1, 0.7), (0.1, 0.2, 2.5), (1.1, 0.2, 2.5), (0.0, 12, 30)],  # the first three lost a float step
)
def test_waiting_exactly_retry_after_reaches_the_probe(start: float, elapsed: float, reset_timeout: float) -> None:
    clock = FakeClock()
    clock.advance(start)  # opened at 0 + start, reopening at start + reset_timeout: sums that can lose a float step
    breaker = Circuit(fail_max=1, reset_timeout=reset_timeout, clock=clock)

    @breaker
    def call(outcome: BaseException | None = None) -> str:
        if outcome is not None:
            raise outcome
        return "ok"

    trip(call, 1)
    clock.advance(elapsed)
    with pytest.raises(CircuitOpenError) as caught:
        call()
    wait = caught.value.retry_after
    assert wait == pytest.approx(reset_timeout - elapsed) and breaker.retry_after() == wait

    clock.advance(wait)

    assert breaker.retry_after() == 0.0
    assert call() == "ok" and breaker.state == "closed"


def test_rejected_calls_do_not_reach_the_function(breaker: Circuit) -> None:
    reached = []

    @breaker
    def ask(*args):
        reached.append(1)
        raise ServerError("down", status=503)

    trip(ask, 3)
    with pytest.raises(CircuitOpenError):
        ask()

    assert len(reached) == 3


@pytest.mark.parametrize(
    "error",
    [RateLimitError("slow", status=429), InvalidRequestError("bad", status=400),
     AuthenticationError("who", status=401), QueueFullError("full")],
)  # fmt: skip
def test_rate_limits_client_errors_and_local_backpressure_neither_count_nor_reset(
    breaker: Circuit, call, error: Exception
) -> None:
    trip(call, 2)
    trip(call, 5, error)
    assert breaker.state == "closed"

    trip(call, 1)

    assert breaker.state == "open"
    assert breaker.stats()["ignored"] == 5


@pytest.mark.parametrize("error", [OverloadedError("busy", status=529), ProviderTimeout("slow"), ConnectionError()])
def test_provider_faults_count(breaker: Circuit, call, error: Exception) -> None:
    trip(call, 3, error)

    assert breaker.state == "open"


def test_failure_rate_over_a_window_opens_the_circuit(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=100, failure_rate=0.5, window=10, min_calls=6)
    ok = breaker(lambda: "ok")
    bad = breaker(fail(ServerError("x", status=500)))

    for _ in range(3):
        ok()
        with pytest.raises(ServerError):
            bad()
    # 6 calls, 3 failed: the last failure makes it 50% of at least min_calls.
    assert breaker.state == "open"
    assert breaker.stats()["trips"] == 1


def test_failure_rate_waits_for_min_calls(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=100, failure_rate=0.5, window=10, min_calls=6)
    bad = breaker(fail(ServerError("x", status=500)))

    trip(bad, 5)

    assert breaker.state == "closed"
    assert breaker.stats()["failure_rate"] == 1.0


def test_only_the_last_window_calls_count_toward_the_rate(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=100, failure_rate=0.6, window=5, min_calls=5)
    ok = breaker(lambda: "ok")
    bad = breaker(fail(ServerError("x", status=500)))

    for _ in range(10):
        ok()  # a long healthy past...
    trip(bad, 2)
    assert breaker.state == "closed"  # 2 of the last 5 failed
    trip(bad, 1)
    assert breaker.state == "open"  # 3 of the last 5: the ten successes before them no longer count


def test_a_window_smaller_than_min_calls_opens_once_full(fake_clock: FakeClock) -> None:
    # window 5 < min_calls 10 (the default): five calls are all the window can ever hold.
    breaker = Circuit(fail_max=100, failure_rate=0.8, window=5)
    ok = breaker(lambda: "ok")
    bad = breaker(fail(ServerError("x", status=500)))

    ok()
    trip(bad, 3)
    assert breaker.state == "closed"  # 4 calls: the window is not full yet
    trip(bad, 1)
    assert breaker.state == "open"  # 4 of 5 failed


# ----------------------------------------------------------------- half-open


def test_after_reset_timeout_one_probe_closes_it(fake_clock: FakeClock, breaker: Circuit, call) -> None:
    trip(call, 3)
    fake_clock.advance(30)

    assert call() == "ok"

    assert breaker.state == "closed"


def test_a_failed_probe_reopens_for_another_reset_timeout(fake_clock: FakeClock, breaker: Circuit, call) -> None:
    trip(call, 3)
    fake_clock.advance(30)
    trip(call, 1)

    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as caught:
        call()
    assert caught.value.retry_after == 30
    assert breaker.stats()["trips"] == 2


def test_success_threshold_needs_that_many_probe_successes(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1, reset_timeout=5, success_threshold=2)
    ok, bad = breaker(lambda: "ok"), breaker(fail(ServerError("x", status=500)))
    trip(bad, 1)
    fake_clock.advance(5)

    ok()
    assert breaker.state == "half_open"
    ok()
    assert breaker.state == "closed"


def test_half_open_lets_only_max_calls_probes_through_at_once(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1, reset_timeout=5, half_open_max_calls=2)
    trip(breaker(fail(ServerError("x", status=500))), 1)
    fake_clock.advance(5)

    @breaker
    def probe():
        yield "chunk"

    first, second, third = probe(), probe(), probe()
    assert next(first) == "chunk"
    assert next(second) == "chunk"
    with pytest.raises(CircuitOpenError):
        next(third)

    for stream in (first, second):
        list(stream)
    assert breaker.state == "closed"


def test_a_cancelled_or_ignored_probe_frees_its_slot(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1, reset_timeout=5)
    call = breaker(lambda exc=None: (_ for _ in ()).throw(exc) if exc else "ok")
    trip(call, 1)
    fake_clock.advance(5)

    with pytest.raises(InvalidRequestError):
        call(InvalidRequestError("bad", status=400))
    assert breaker.state == "half_open"

    assert call() == "ok"
    assert breaker.state == "closed"


# ----------------------------------------------------------------- sharing, manual control, listeners


def test_a_breaker_opened_by_one_function_rejects_another_sharing_it(fake_clock: FakeClock) -> None:
    shared = Circuit(fail_max=2, reset_timeout=10)

    @shared
    def chat(*args):
        raise ServerError("down", status=500)

    @shared
    def embed():
        return [0.1]

    trip(chat, 2)

    with pytest.raises(CircuitOpenError):
        embed()
    assert chat.policy is embed.policy


def test_manual_open_and_close(breaker: Circuit, call) -> None:
    breaker.open()
    with pytest.raises(CircuitOpenError):
        call()

    breaker.close()
    assert call() == "ok"


def test_state_changes_reach_the_listener_and_the_log(fake_clock: FakeClock, caplog) -> None:
    seen = []
    breaker = Circuit(fail_max=1, reset_timeout=5, name="llm", on_state_change=lambda *change: seen.append(change))
    ok, bad = breaker(lambda: "ok"), breaker(fail(ServerError("x", status=500)))

    with caplog.at_level(logging.INFO, logger="resilient.circuit"):
        trip(bad, 1)
        fake_clock.advance(5)
        ok()

    assert seen == [("llm", "closed", "open"), ("llm", "open", "half_open"), ("llm", "half_open", "closed")]
    assert [r.getMessage() for r in caplog.records] == [
        "circuit llm: closed -> open",
        "circuit llm: open -> half_open",
        "circuit llm: half_open -> closed",
    ]


def test_pybreaker_listeners_see_transitions(fake_clock: FakeClock) -> None:
    class Recorder(pybreaker.CircuitBreakerListener):
        def __init__(self) -> None:
            self.states: list[str] = []

        def state_change(self, cb, old_state, new_state) -> None:
            self.states.append(new_state.name)

    recorder = Recorder()
    breaker = Circuit(fail_max=1, listeners=[recorder])
    trip(breaker(fail(ServerError("x", status=500))), 1)

    assert recorder.states == ["open"]


def test_is_failure_can_be_customised(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1, is_failure=RateLimitError)
    trip(breaker(fail(RateLimitError("slow", status=429))), 1)

    assert breaker.state == "open"


# ----------------------------------------------------------------- concurrency and callable kinds


def test_concurrent_slow_calls_through_a_closed_circuit_overlap() -> None:
    breaker = Circuit()
    inside, peak, lock = 0, 0, threading.Lock()
    all_in = threading.Barrier(8, timeout=5)

    @breaker
    def slow():
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        all_in.wait()  # only returns once all 8 calls are inside at the same time
        time.sleep(0.002)
        with lock:
            inside -= 1
        return "ok"

    threads = [threading.Thread(target=slow) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert peak == 8
    assert breaker.stats()["successes"] == 8


async def test_async_calls_count_and_open(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=2, reset_timeout=5)

    @breaker
    async def ask(fail: bool):
        await asyncio.sleep(0)
        if fail:
            raise ServerError("x", status=500)
        return "ok"

    for _ in range(2):
        with pytest.raises(ServerError):
            await ask(True)
    with pytest.raises(CircuitOpenError):
        await ask(False)
    fake_clock.advance(5)
    assert await ask(False) == "ok"


async def test_a_cancelled_async_call_counts_as_neither(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1)
    started = asyncio.Event()

    @breaker
    async def hang():
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert breaker.state == "closed"
    assert breaker.stats()["ignored"] == 1


def test_stream_outcome_is_recorded_when_it_ends(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1)

    @breaker
    def stream():
        yield "a"
        raise ServerError("cut", status=502)

    chunks = stream()
    assert next(chunks) == "a"
    assert breaker.state == "closed"
    with pytest.raises(ServerError):
        next(chunks)
    assert breaker.state == "open"


def test_a_stream_closed_early_by_its_consumer_is_a_success(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1, reset_timeout=5)
    trip(breaker(fail(ServerError("x", status=500))), 1)
    fake_clock.advance(5)

    @breaker
    def stream():
        yield from range(10)

    chunks = stream()
    next(chunks)
    chunks.close()

    assert breaker.state == "closed"


async def test_async_stream_failure_opens(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1)

    @breaker
    async def stream():
        yield "a"
        raise ServerError("cut", status=502)

    with pytest.raises(ServerError):
        async for _ in stream():
            pass
    assert breaker.state == "open"


async def test_an_async_stream_probe_called_with_wrong_arguments_frees_the_probe(fake_clock: FakeClock) -> None:
    breaker = Circuit(fail_max=1, reset_timeout=5)
    trip(breaker(fail(ServerError("x", status=500))), 1)
    fake_clock.advance(5)

    @breaker
    async def stream(prompt):
        yield prompt

    with pytest.raises(TypeError):
        async for _ in stream():  # missing argument: the generator is never created
            pass

    assert [chunk async for chunk in stream("ok")] == ["ok"]  # the next call is the probe
    assert breaker.state == "closed"


# ----------------------------------------------------------------- policy and decorator forms


def test_policy_changes_apply_to_the_next_call(fake_clock: FakeClock, breaker: Circuit, call) -> None:
    call.policy.fail_max = 1
    trip(call, 1)

    assert breaker.state == "open"


@pytest.mark.parametrize(
    ("field", "value"),
    [("fail_max", 0), ("reset_timeout", -1), ("failure_rate", 1.5), ("window", 0), ("is_failure", "x")],
)
def test_invalid_policy_values_raise_value_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        setattr(Circuit().policy, field, value)
    with pytest.raises(ValueError, match=field):
        circuit(**{field: value})


def test_bare_decorator_gives_each_function_its_own_breaker(fake_clock: FakeClock) -> None:
    @circuit
    def first(*args):
        raise ServerError("x", status=500)

    @circuit
    def second():
        return "ok"

    trip(first, 5)

    assert second() == "ok"
    assert first.stats()["state"] == "open"
    assert second.stats()["state"] == "closed"
