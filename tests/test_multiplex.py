"""@multiplex: key choice, cool-down and failover, disabling, per-key limits and stats, with a FakeClock."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from resilient import (
    AuthenticationError,
    FakeClock,
    NoKeyAvailableError,
    RateLimitError,
    ServerError,
    backoff,
    describe,
)
from resilient.keys import keys_from_env, read_dotenv
from resilient.multiplex import KeyPool, multiplex
from waiting import ReadCountingClock, await_until, waiting_call

A = "sk-ant-" + "api03-" + "A" * 20 + "aaaa"  # built, so no literal looks like a real key
B = "sk-ant-" + "api03-" + "B" * 20 + "bbbb"
C = "sk-ant-" + "api03-" + "C" * 20 + "cccc"
NAMES = {A: "a", B: "b", C: "c"}


class Provider:
    """A fake provider: answers with the key's short name, or raises what ``errors[name]`` says."""

    def __init__(self, **errors: BaseException) -> None:
        self.errors = errors
        self.seen: list[str] = []

    def __call__(self, prompt: str = "hi", *, api_key: str) -> dict:
        name = NAMES[api_key]
        self.seen.append(name)
        error = self.errors.get(name)
        if error is not None:
            raise error
        return {"text": name, "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}


def pool_of(provider: Provider, **options) -> tuple[KeyPool, object]:
    pool = KeyPool({"a": A, "b": B, "c": C}, **options)
    return pool, pool(provider)


# ----------------------------------------------------------------- strategies


def test_round_robin_takes_keys_in_turn(fake_clock: FakeClock) -> None:
    provider = Provider()
    _, ask = pool_of(provider)

    assert [ask()["text"] for _ in range(5)] == ["a", "b", "c", "a", "b"]


def test_the_key_is_passed_as_the_configured_keyword(fake_clock: FakeClock) -> None:
    @multiplex([A], param="token")
    def ask(*, token: str) -> str:
        return NAMES[token]

    assert ask() == "a"


def test_least_loaded_picks_the_key_with_fewest_calls_in_flight(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A, "b": B, "c": C}, strategy="least-loaded")

    @pool
    def stream(*, api_key: str):
        yield NAMES[api_key]
        yield "done"

    @pool
    def ask(*, api_key: str) -> str:
        return NAMES[api_key]

    held_a, held_b = stream(), stream()
    assert (next(held_a), next(held_b)) == ("a", "b")  # both still in flight

    assert ask() == "c"
    assert ask() == "c"  # a and b are busy
    list(held_a)
    assert ask() == "a"  # a and b idle now; a has fewer requests than c


def test_weighted_spreads_calls_by_weight_evenly(fake_clock: FakeClock) -> None:
    @multiplex({"a": (A, 3), "b": (B, 1)}, strategy="weighted")
    def ask(*, api_key: str) -> str:
        return NAMES[api_key]

    assert [ask() for _ in range(8)] == ["a", "a", "b", "a", "a", "a", "b", "a"]


def test_usage_picks_the_key_with_fewest_tokens_in_the_last_minute(fake_clock: FakeClock) -> None:
    spent = {"a": 100, "b": 10}

    @multiplex({"a": A, "b": B}, strategy="usage")
    def ask(*, api_key: str) -> dict:
        name = NAMES[api_key]
        return {"text": name, "usage": {"input_tokens": spent[name], "output_tokens": 0}}

    assert [ask()["text"] for _ in range(2)] == ["a", "b"]  # both at 0, then a has 100
    assert ask()["text"] == "b"  # 10 < 100
    fake_clock.advance(60)
    assert ask()["text"] == "a"  # the window forgot both; ties go by fewer requests


def test_a_callable_strategy_chooses_among_usable_keys(fake_clock: FakeClock) -> None:
    @multiplex({"a": A, "b": B}, strategy=lambda keys: keys[-1])
    def ask(*, api_key: str) -> str:
        return NAMES[api_key]

    assert [ask(), ask()] == ["b", "b"]


# ----------------------------------------------------------------- cool-down and failover


def test_a_429_cools_the_key_and_the_call_fails_over_at_once(fake_clock: FakeClock) -> None:
    provider = Provider(a=RateLimitError("slow down", status=429, retry_after=7.0))
    pool, ask = pool_of(provider)

    assert ask()["text"] == "b"

    assert provider.seen == ["a", "b"]
    assert fake_clock.sleeps == []
    key_a = pool.stats()["keys"]["a"]
    assert (key_a["cooling_for"], key_a["last_error"], key_a["failures"]) == (7.0, "rate_limit", 1)
    assert pool.stats()["failovers"] == 1


def test_a_429_without_a_hint_cools_for_cooldown(fake_clock: FakeClock) -> None:
    pool, ask = pool_of(Provider(a=RateLimitError("slow down", status=429)), cooldown=12.5)

    ask()

    assert pool.stats()["keys"]["a"]["cooling_for"] == 12.5


def test_a_cooling_key_is_skipped_until_its_cooldown_passes(fake_clock: FakeClock) -> None:
    provider = Provider(a=RateLimitError("slow down", status=429, retry_after=5.0))
    _, ask = pool_of(provider)
    ask()  # a cools, b answers
    del provider.errors["a"]

    assert [ask()["text"] for _ in range(3)] == ["c", "b", "c"]
    fake_clock.advance(5.0)
    assert ask()["text"] == "a"


def test_every_key_cooling_raises_rate_limit_with_the_shortest_wait(fake_clock: FakeClock) -> None:
    provider = Provider(
        a=RateLimitError("slow", status=429, retry_after=9.0),
        b=RateLimitError("slow", status=429, retry_after=4.0),
        c=RateLimitError("slow", status=429, retry_after=6.0),
    )
    _, ask = pool_of(provider)

    with pytest.raises(RateLimitError) as caught:
        ask()

    assert caught.value.retry_after == 4.0
    assert caught.value.__cause__ is provider.errors["c"]
    fake_clock.advance(1.0)
    with pytest.raises(RateLimitError) as again:
        ask()
    assert again.value.retry_after == 3.0
    assert provider.seen == ["a", "b", "c"]


def test_an_outer_backoff_waits_exactly_the_shortest_cooldown(fake_clock: FakeClock) -> None:
    provider = Provider(a=RateLimitError("slow", status=429, retry_after=2.0), b=RateLimitError("slow", retry_after=3.0))

    @backoff(max_retries=1, initial_delay=0.0, jitter=None)
    @multiplex({"a": A, "b": B})
    def ask(*, api_key: str) -> dict:
        try:
            return provider(api_key=api_key)
        finally:
            if len(provider.seen) == 2:  # the provider recovers after the first round
                provider.errors.clear()

    assert ask()["text"] == "a"

    assert fake_clock.sleeps == [2.0]
    assert provider.seen == ["a", "b", "a"]


def test_a_401_disables_the_key_and_the_call_moves_on(fake_clock: FakeClock) -> None:
    provider = Provider(a=AuthenticationError("bad key", status=401))
    pool, ask = pool_of(provider)

    assert ask()["text"] == "b"
    fake_clock.advance(3600)
    assert [ask()["text"] for _ in range(3)] == ["c", "b", "c"]

    key_a = pool.stats()["keys"]["a"]
    assert key_a["disabled"] == "auth (401)" and key_a["requests"] == 1


def test_every_key_disabled_raises_no_key_available(fake_clock: FakeClock) -> None:
    error = AuthenticationError("revoked", status=403)
    _, ask = pool_of(Provider(a=error, b=error, c=error))

    with pytest.raises(NoKeyAvailableError, match="disabled"):
        ask()
    with pytest.raises(NoKeyAvailableError):
        ask()


def test_other_errors_propagate_without_failover(fake_clock: FakeClock) -> None:
    provider = Provider(a=ServerError("boom", status=500))
    pool, ask = pool_of(provider)

    with pytest.raises(ServerError):
        ask()

    assert provider.seen == ["a"]
    key_a = pool.stats()["keys"]["a"]
    assert (key_a["last_error"], key_a["cooling_for"], key_a["disabled"], key_a["in_flight"]) == ("server", 0.0, None, 0)


# ----------------------------------------------------------------- per-key limits


def test_a_key_at_max_concurrent_per_key_is_skipped(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A, "b": B}, max_concurrent_per_key=1, max_wait=0)  # refuse at once when all are busy

    @pool
    def stream(*, api_key: str):
        yield NAMES[api_key]

    held = [stream(), stream()]
    assert [next(s) for s in held] == ["a", "b"]

    with pytest.raises(RateLimitError, match="in flight"):
        next(stream())
    list(held[0])
    assert next(stream()) == "a"


def one_chunk_streams(pool: KeyPool):
    @pool
    def stream(*, api_key: str):
        yield NAMES[api_key]

    return stream


def test_when_every_key_is_busy_a_call_waits_for_one_to_finish(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A, "b": B}, max_concurrent_per_key=1)
    stream = one_chunk_streams(pool)
    held = [stream(), stream()]
    assert [next(s) for s in held] == ["a", "b"]

    waiter = waiting_call(lambda: next(stream()), until=lambda: pool.stats()["waiting"] == 1)
    assert waiter.is_alive()
    list(held[1])  # b's stream ends: its slot goes to the waiter
    assert waiter.result() == "b"
    stats = pool.stats()
    assert (stats["waiting"], stats["exhausted"], stats["in_flight"]) == (0, 0, 1)  # a still held; the waiter's stream dropped


def test_a_call_waits_at_most_max_wait_then_gets_a_rate_limit_error() -> None:
    clock = ReadCountingClock()
    pool = KeyPool({"a": A}, max_concurrent_per_key=1, max_wait=5.0, clock=clock)
    stream = one_chunk_streams(pool)
    held = stream()
    next(held)
    waiter = waiting_call(lambda: next(stream()), until=lambda: pool.stats()["waiting"] == 1)
    clock.advance_and_wait_for_a_look(4.999)
    assert waiter.is_alive()  # not a moment early
    clock.advance(0.001)
    error = waiter.result()
    assert isinstance(error, RateLimitError) and error.retry_after is None
    assert "1 calls in flight (waited 5s" in str(error)
    assert pool.stats()["exhausted"] == 1 and pool.stats()["waiting"] == 0


async def waiting_task(pool: KeyPool) -> tuple[asyncio.Task[str], asyncio.Task[str], asyncio.Event]:
    """A task holding the pool's only key until the event is set, and a second task waiting for that key."""
    gate = asyncio.Event()

    @pool
    async def ask(*, api_key: str) -> str:
        await gate.wait()
        return NAMES[api_key]

    first = asyncio.create_task(ask())
    await asyncio.sleep(0)  # first holds the only key
    second = asyncio.create_task(ask())
    await await_until(lambda: pool.stats()["waiting"] == 1)
    return first, second, gate


def test_a_task_waits_for_a_key_without_blocking_its_event_loop(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A}, max_concurrent_per_key=1)

    async def main() -> list[str]:
        first, second, gate = await waiting_task(pool)
        gate.set()  # runs only because the loop is free: first ends, second gets the key
        return [await first, await second]

    assert asyncio.run(main()) == ["a", "a"]
    assert pool.stats()["in_flight"] == 0 and pool.stats()["exhausted"] == 0


def test_a_task_waits_at_most_max_wait_then_gets_a_rate_limit_error() -> None:
    clock = ReadCountingClock()
    pool = KeyPool({"a": A}, max_concurrent_per_key=1, max_wait=5.0, clock=clock)

    async def main() -> None:
        first, second, gate = await waiting_task(pool)
        await clock.aadvance_and_wait_for_a_look(4.999)
        assert not second.done()  # not a moment early
        clock.advance(0.001)
        with pytest.raises(RateLimitError, match="waited 5s"):
            await second
        gate.set()
        assert await first == "a"

    asyncio.run(main())
    assert pool.stats()["exhausted"] == 1 and pool.stats()["waiting"] == 0 and pool.stats()["in_flight"] == 0


def test_waiters_get_the_pools_error_when_the_busy_key_is_disabled(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A}, max_concurrent_per_key=1)

    @pool
    def stream(*, api_key: str):
        yield NAMES[api_key]
        raise AuthenticationError("invalid x-api-key", status=401)

    held = stream()
    next(held)
    waiter = waiting_call(lambda: next(stream()), until=lambda: pool.stats()["waiting"] == 1)
    with pytest.raises(AuthenticationError):
        next(held)  # the key is disabled: the waiter must not wait for it any longer
    error = waiter.result()
    assert isinstance(error, NoKeyAvailableError) and "disabled" in str(error)


def test_max_wait_is_validated() -> None:
    with pytest.raises(ValueError, match="max_wait"):
        KeyPool([A], max_concurrent_per_key=1, max_wait=-1)


def test_a_key_at_its_rpm_limit_is_skipped(fake_clock: FakeClock) -> None:
    @multiplex({"a": A, "b": B}, limits={"rpm": 2})
    def ask(*, api_key: str) -> str:
        return NAMES[api_key]

    assert [ask() for _ in range(4)] == ["a", "b", "a", "b"]
    with pytest.raises(RateLimitError) as caught:
        ask()
    assert caught.value.retry_after == pytest.approx(30.0)


def test_a_key_past_its_tpm_limit_is_skipped_until_refilled(fake_clock: FakeClock) -> None:
    provider = Provider()
    _, ask = pool_of(provider, limits={"tpm": 20})  # each answer uses 15 tokens

    assert [ask()["text"] for _ in range(4)] == ["a", "b", "c", "a"]
    assert ask()["text"] == "b"  # a went into debt (30 of 20)
    fake_clock.advance(60)
    assert ask()["text"] == "c"
    assert ask()["text"] == "a"


def test_per_key_limits_are_tuned_at_runtime_for_every_key(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A, "b": B}, limits={"rpm": 2})

    @pool
    def ask(*, api_key: str) -> str:
        return NAMES[api_key]

    assert [ask() for _ in range(4)] == ["a", "b", "a", "b"]
    pool.policy.rpm = 120  # both keys, not only keys added later; what they used stays used
    with pytest.raises(RateLimitError) as caught:
        ask()
    assert caught.value.retry_after == pytest.approx(0.5)  # one request back at the new rate, not in 30 s
    fake_clock.advance(0.5)
    assert ask() == "a"

    pool.policy.rpm = None
    assert [ask() for _ in range(10)] == ["b", "a"] * 5
    assert pool.limits == {}
    with pytest.raises(ValueError, match="rpm"):
        pool.policy.rpm = 0


@pytest.mark.parametrize("change", [{"max_concurrent_per_key": 2}, {"max_concurrent_per_key": None}])
def test_raising_the_per_key_cap_admits_a_waiting_thread_at_once(change: dict) -> None:
    pool = KeyPool([A], max_concurrent_per_key=1, max_wait=None)  # system clock: a waiter is only ever woken
    release = threading.Event()

    @pool
    def ask(hold: bool, *, api_key: str) -> str:
        if hold:
            release.wait(10)
        return NAMES[api_key]

    holder = waiting_call(lambda: ask(True), until=lambda: pool.stats()["in_flight"] == 1)
    waiter = waiting_call(lambda: ask(False), until=lambda: pool.stats()["waiting"] == 1)

    pool.policy.update(**change)

    assert waiter.result() == "a"
    assert holder.is_alive()  # the first call still holds its slot
    release.set()
    assert holder.result() == "a"


def test_raising_the_per_key_cap_admits_a_waiting_task_at_once() -> None:
    pool = KeyPool([A], max_concurrent_per_key=1, max_wait=None)

    @pool
    async def ask(hold: asyncio.Event | None = None, *, api_key: str) -> str:
        if hold is not None:
            await hold.wait()
        return NAMES[api_key]

    async def main() -> None:
        release = asyncio.Event()
        holder = asyncio.create_task(ask(release))
        await await_until(lambda: pool.stats()["in_flight"] == 1)
        waiter = asyncio.create_task(ask())
        await await_until(lambda: pool.stats()["waiting"] == 1)

        pool.policy.max_concurrent_per_key = 2

        assert await asyncio.wait_for(waiter, 5) == "a"
        assert not holder.done()
        release.set()
        await holder

    asyncio.run(main())


def test_a_key_freed_after_max_wait_does_not_go_to_a_caller_whose_wait_ran_out(fake_clock: FakeClock) -> None:
    pool = KeyPool([A], max_concurrent_per_key=1, max_wait=5)

    @pool
    def ask(*, api_key: str) -> str:
        return NAMES[api_key]

    held = pool.checkout()
    waiter = waiting_call(ask, until=lambda: pool.stats()["waiting"] == 1)
    fake_clock.advance(10)  # the call holding the key works 10 s, then gives it back at once
    pool.checkin(held)

    assert isinstance(waiter.result(), RateLimitError)  # decided by the fake clock, not by how soon the waiter woke


# ----------------------------------------------------------------- stats and secrets


def test_per_key_stats_count_requests_outcomes_and_tokens(fake_clock: FakeClock) -> None:
    pool, ask = pool_of(Provider(b=ServerError("boom", status=502)))
    ask()
    with pytest.raises(ServerError):
        ask()
    ask()
    ask()

    stats = pool.stats()["keys"]
    assert {name: (s["requests"], s["successes"], s["failures"], s["total_tokens"]) for name, s in stats.items()} == {
        "a": (2, 2, 0, 30),
        "b": (1, 0, 1, 0),
        "c": (1, 1, 0, 15),
    }
    assert (stats["a"]["input_tokens"], stats["a"]["output_tokens"]) == (20, 10)


def test_a_usage_extractor_reads_tokens_from_any_result(fake_clock: FakeClock) -> None:
    @multiplex([A], usage=lambda text: {"prompt_tokens": 3, "completion_tokens": len(text)})
    def ask(*, api_key: str) -> str:
        return "hello"

    ask()

    (stats,) = ask.stats()["keys"].values()
    assert (stats["input_tokens"], stats["output_tokens"], stats["total_tokens"]) == (3, 5, 8)


def test_a_usage_extractor_that_fails_still_gives_the_key_back(fake_clock: FakeClock) -> None:
    @multiplex([A], max_concurrent_per_key=1, max_wait=0, usage=lambda result: result["usage"])
    def ask(prompt: str, *, api_key: str) -> dict:
        return {"text": prompt} if prompt == "no usage" else {"text": prompt, "usage": {"total_tokens": 3}}

    with pytest.raises(KeyError, match="usage"):
        ask("no usage")

    assert ask.stats()["in_flight"] == 0
    assert ask("hi") == {"text": "hi", "usage": {"total_tokens": 3}}
    (stats,) = ask.stats()["keys"].values()
    assert (stats["successes"], stats["failures"], stats["total_tokens"]) == (2, 0, 3)


def test_no_key_text_in_stats_reprs_errors_or_logs(fake_clock: FakeClock, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    provider = Provider(a=AuthenticationError("bad", status=401), b=RateLimitError("slow", status=429, retry_after=1.0))
    pool = KeyPool([A, B, C])
    ask = pool(provider)
    ask()
    provider.errors["c"] = AuthenticationError("bad", status=401)
    with pytest.raises(RateLimitError) as caught:
        ask()

    shown = " ".join(
        [repr(pool), repr(pool.keys), str(pool.stats()), str(describe(ask)), str(caught.value), repr(caught.value), caplog.text]
    )
    for key in (A, B, C):
        assert key not in shown and key[8:-4] not in shown
    assert "sk-ant-…aaaa" in shown and "disabled" in caplog.text


def test_add_and_remove_keys_at_runtime(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A})
    ask = pool(Provider())

    assert pool.add_key(B, name="b") == "b"
    assert [ask()["text"] for _ in range(2)] == ["a", "b"]
    pool.remove_key("a")
    assert [ask()["text"] for _ in range(2)] == ["b", "b"]
    pool.remove_key(B)
    with pytest.raises(NoKeyAvailableError):
        ask()


def test_a_key_cannot_be_added_twice() -> None:
    pool = KeyPool([A])

    with pytest.raises(ValueError, match="already"):
        pool.add_key(A)


def test_policy_is_validated_on_assignment() -> None:
    pool = KeyPool([A])

    with pytest.raises(ValueError, match="strategy"):
        pool.policy.strategy = "random"
    with pytest.raises(ValueError, match="param"):
        pool.policy.param = "not a name"
    pool.policy.strategy = "least-loaded"
    assert describe(pool(Provider()))[0]["policy"]["strategy"] == "least-loaded"


# ----------------------------------------------------------------- keys from the environment


def test_env_reads_the_variable_and_its_numbered_variants_in_order(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEMO_API_KEY_2", C)
    monkeypatch.setenv("DEMO_API_KEY", A)
    monkeypatch.setenv("DEMO_API_KEY_10", B)

    pool = KeyPool(env="DEMO_API_KEY")

    assert [k.name for k in pool.keys] == ["DEMO_API_KEY", "DEMO_API_KEY_2", "DEMO_API_KEY_10"]


def test_a_dotenv_file_fills_in_without_overriding(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"# keys\nexport DEMO_API_KEY='{C}'\nDEMO_API_KEY_1={B}  # second\n")
    monkeypatch.setenv("DEMO_API_KEY", A)

    keys = keys_from_env("DEMO_API_KEY")

    assert keys == [("DEMO_API_KEY", A), ("DEMO_API_KEY_1", B)]
    assert read_dotenv(tmp_path / ".env")["DEMO_API_KEY"] == C


def test_no_key_anywhere_is_an_error_at_decoration_naming_the_variables(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOPE_API_KEY", raising=False)

    with pytest.raises(NoKeyAvailableError, match="NOPE_API_KEY, NOPE_API_KEY_1, NOPE_API_KEY_2"):
        multiplex(env="NOPE_API_KEY")


# ----------------------------------------------------------------- every kind of callable


async def test_async_calls_fail_over_on_429(fake_clock: FakeClock) -> None:
    provider = Provider(a=RateLimitError("slow", status=429, retry_after=1.0))
    pool = KeyPool({"a": A, "b": B})

    @pool
    async def ask(*, api_key: str) -> dict:
        return provider(api_key=api_key)

    assert (await ask())["text"] == "b"
    assert pool.stats()["in_flight"] == 0


def test_a_stream_fails_over_only_before_its_first_chunk(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A, "b": B})

    @pool
    def stream(*, api_key: str):
        if NAMES[api_key] == "a":
            raise RateLimitError("slow", status=429, retry_after=1.0)
        yield "b1"
        raise RateLimitError("slow", status=429, retry_after=1.0)

    chunks = stream()
    assert next(chunks) == "b1"
    with pytest.raises(RateLimitError):
        next(chunks)
    assert pool.stats()["in_flight"] == 0 and pool.stats()["keys"]["b"]["failures"] == 1


def test_a_stream_holds_its_key_until_it_ends_and_counts_its_usage(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A})

    @pool
    def stream(*, api_key: str):
        yield {"delta": "hel"}
        yield {"delta": "lo", "usage": {"input_tokens": 4, "output_tokens": 2}}

    chunks = stream()
    next(chunks)
    assert pool.stats()["in_flight"] == 1
    list(chunks)

    assert pool.stats()["in_flight"] == 0 and pool.stats()["keys"]["a"]["total_tokens"] == 6


def test_a_stream_keeps_its_return_value(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A})

    @pool
    def stream(*, api_key: str):
        yield "chunk"
        return "summary"

    def relay():
        return (yield from stream())

    chunks = relay()
    assert next(chunks) == "chunk"
    with pytest.raises(StopIteration) as end:
        next(chunks)

    assert end.value.value == "summary" and pool.stats()["in_flight"] == 0


async def test_an_async_stream_fails_over_and_releases_on_close(fake_clock: FakeClock) -> None:
    pool = KeyPool({"a": A, "b": B})

    @pool
    async def stream(*, api_key: str):
        if NAMES[api_key] == "a":
            raise AuthenticationError("bad", status=401)
        for n in range(3):
            yield n

    chunks = stream()
    assert await chunks.__anext__() == 0
    assert pool.stats()["in_flight"] == 1
    await chunks.aclose()

    stats = pool.stats()
    assert stats["in_flight"] == 0 and stats["keys"]["a"]["disabled"] == "auth (401)"
    assert stats["keys"]["b"]["successes"] == 1


async def test_a_cancelled_async_call_gives_its_key_back_without_a_verdict(fake_clock: FakeClock) -> None:
    import asyncio

    pool = KeyPool({"a": A})
    started = asyncio.Event()

    @pool
    async def ask(*, api_key: str) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(ask())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    key_a = pool.stats()["keys"]["a"]
    assert (key_a["in_flight"], key_a["failures"], key_a["successes"], key_a["cooling_for"]) == (0, 0, 0, 0.0)


def test_one_multiplex_decorator_on_two_functions_gives_each_its_own_pool(fake_clock: FakeClock) -> None:
    spread = multiplex({"a": A, "b": B})
    first = spread(Provider())
    second = spread(Provider())

    assert (first()["text"], second()["text"]) == ("a", "a")
    assert first.__resilient_layer__ is not second.__resilient_layer__
    assert list(second.stats()["keys"]) == ["a", "b"]


def test_a_keyless_pool_sends_no_key_but_counts_and_paces_its_one_endpoint(fake_clock) -> None:
    pool = KeyPool(keyless=True, name="local")
    seen = []

    @pool
    def call(**kwargs):
        seen.append(kwargs)
        if len(seen) == 2:
            raise RateLimitError("slow down", retry_after=3.0)
        return {"usage": {"input_tokens": 2, "output_tokens": 5}}

    call()
    with pytest.raises(RateLimitError) as caught:
        call()

    assert seen == [{}, {}]  # no api_key keyword at all
    assert caught.value.retry_after == 3.0  # the endpoint cools like a key, so @backoff waits exactly that
    stats = pool.stats()["keys"]["no-key"]
    assert (stats["requests"], stats["successes"], stats["failures"], stats["total_tokens"]) == (2, 1, 1, 7)
    with pytest.raises(ValueError, match="keyless"):
        pool.add_key("k-" + "0123456789abcdef")
    with pytest.raises(ValueError, match="keyless"):
        KeyPool(["k-" + "0123456789abcdef"], keyless=True)


# ----------------------------------------------------------------- streams that fail to start or to close


def test_a_stream_that_fails_to_start_gives_its_key_back(fake_clock: FakeClock) -> None:
    pool = KeyPool([A], max_concurrent_per_key=1, max_wait=0)

    @pool
    def stream(prompt: str) -> Iterator[str]:  # takes no api_key: the call itself raises TypeError
        yield prompt

    @pool
    async def astream(prompt: str) -> AsyncIterator[str]:
        yield prompt

    async def first_chunk() -> str:
        return await astream("hi").__anext__()

    with pytest.raises(TypeError):
        next(stream("hi"))
    with pytest.raises(TypeError):
        asyncio.run(first_chunk())

    assert pool.stats()["in_flight"] == 0  # with the key leaked, max_concurrent_per_key=1 would refuse every call


def test_an_async_stream_whose_closing_is_cancelled_still_gives_its_key_back() -> None:
    pool = KeyPool([A], max_concurrent_per_key=1, max_wait=0)
    closing = asyncio.Event()

    @pool
    async def stream(*, api_key: str) -> AsyncIterator[str]:
        try:
            yield "a"
            yield "b"
        finally:
            closing.set()
            await asyncio.Event().wait()  # closing the response takes a while...

    async def main() -> None:
        chunks = stream()
        await chunks.__anext__()
        closer = asyncio.create_task(chunks.aclose())
        await closing.wait()
        closer.cancel()  # ...and the task closing it is cancelled meanwhile
        await asyncio.gather(closer, return_exceptions=True)

    asyncio.run(main())

    assert pool.stats()["in_flight"] == 0


def test_the_usage_window_holds_one_minute_of_answers_whatever_the_strategy(fake_clock: FakeClock) -> None:
    pool = KeyPool([A])  # round-robin: nothing ever reads the window

    @pool
    def ask(*, api_key: str) -> dict:
        return {"usage": {"input_tokens": 3, "output_tokens": 1}}

    for _ in range(600):  # ten minutes, one answer a second
        ask()
        fake_clock.advance(1.0)

    key = pool.keys[0]
    assert len(key._recent) <= 60  # a long-running pool must not keep every answer it ever had
    assert key.tokens_in_window(fake_clock.monotonic()) == 59 * 4  # answers within the last minute
    assert pool.stats()["keys"][key.name]["total_tokens"] == 600 * 4
