"""Prebuilt clients: the recommended stack with the seeds' defaults, stats in the seeds' shape, pacing."""

from __future__ import annotations

import pytest

from resilient import FakeClock, RateLimitError, clock
from resilient.adapters import anthropic, openai

KEYS = ["test-key-aaaa1111", "test-key-bbbb2222"]
USER = [{"role": "user", "content": "Hello there"}]


def test_client_uses_the_seeds_defaults(emulator) -> None:
    client = anthropic.Client(api_key=KEYS, base_url=emulator.url)

    assert (client.policy.queue.max_concurrent, client.policy.queue.queue_size) == (5, 100)
    assert (client.policy.backoff.max_retries, client.policy.backoff.initial_delay) == (5, 1.0)
    assert (client.policy.backoff.factor, client.policy.backoff.max_delay) == (2.0, 16.0)
    assert [layer["layer"] for layer in client.describe()] == ["queue", "circuit", "backoff", "multiplex"]


def test_client_spreads_calls_over_keys_and_counts_usage(emulator) -> None:
    client = openai.Client(api_key=KEYS, base_url=emulator.url + "/v1")

    results = [client.chat(USER, model="gpt-4o-mini") for _ in range(4)]
    stats = client.get_stats()

    assert stats["total_requests"] == stats["successful_requests"] == 4
    assert stats["failed_requests"] == 0
    assert stats["endpoints_count"] == 2
    assert stats["input_tokens"] == sum(r["usage"]["input_tokens"] for r in results)
    assert stats["total_tokens"] == sum(r["usage"]["total_tokens"] for r in results)
    assert [k["total_requests"] for k in stats["keys"].values()] == [2, 2]


def test_stats_of_one_key_by_fingerprint_and_no_key_text_anywhere(emulator) -> None:
    client = anthropic.Client(api_key=KEYS, base_url=emulator.url)
    client.chat(USER, model="claude-emulated")
    fingerprint = next(iter(client.stats()["keys"].values()))["fingerprint"]

    assert client.get_stats(fingerprint)["total_requests"] == 1
    shown = repr(client) + repr(client.stats()) + repr(client.describe())
    assert all(key not in shown for key in KEYS)


def test_client_keys_come_from_the_environment(emulator, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEYS[0])
    monkeypatch.setenv("ANTHROPIC_API_KEY_1", KEYS[1])

    assert anthropic.Client(base_url=emulator.url).stats()["endpoints_count"] == 2


def test_client_streams_through_the_stack(emulator) -> None:
    client = anthropic.Client(api_key=KEYS[0], base_url=emulator.url)

    chunks = list(client.stream_chat(USER, model="claude-emulated"))

    assert chunks[-1]["done"] and chunks[-1]["finish_reason"] == "stop"
    assert client.queue.stats()["active"] == 0


def test_client_paces_on_rate_limit_headers_instead_of_collecting_429s(emulator, fake_clock: FakeClock) -> None:
    emulator.add_fault("rate_limit", rps=2, burst=2)
    client = openai.Client(api_key=KEYS[0], base_url=emulator.url + "/v1")
    client.policy.backoff.update(jitter=None, initial_delay=0.1)  # so the waits seen are the pacing's own

    for _ in range(10):
        client.chat(USER, model="gpt-4o-mini")

    statuses = [r.status for r in emulator.requests]
    assert statuses == [200] * 10
    # After the burst of 2, each call waits for the next request to be back: 1 s to full / 2 requests.
    assert fake_clock.sleeps == [0.5] * 8


def test_without_pacing_information_a_429_is_retried_after_its_retry_after(emulator, fake_clock: FakeClock) -> None:
    emulator.add_fault("rate_limit", rps=1, burst=1)
    client = openai.Client(api_key=KEYS[0], base_url=emulator.url + "/v1")
    client.chat(USER, model="gpt-4o-mini")
    client.keys.keys[0].cooling_until = float("-inf")  # forget what the headers said

    client.chat(USER, model="gpt-4o-mini")

    assert [r.status for r in emulator.requests] == [200, 429, 200]


def test_client_policy_is_tunable(emulator, fake_clock: FakeClock) -> None:
    emulator.add_fault("outage", status=500)
    client = openai.Client(api_key=KEYS[0], base_url=emulator.url + "/v1")
    client.policy.backoff.max_retries = 1

    with pytest.raises(Exception) as caught:
        client.chat(USER, model="gpt-4o-mini")

    assert caught.value.status == 500
    assert len(emulator.requests) == 2
    assert not isinstance(caught.value, RateLimitError)


def test_groq_and_gemini_offer_the_same_client(emulator) -> None:
    from resilient.adapters import gemini, groq

    for client, model in ((groq.Client(api_key=KEYS, base_url=emulator.url + "/v1"), "llama-3.1-8b-instant"),
                          (gemini.Client(api_key=KEYS, base_url=emulator.url), "gemini-2.0-flash")):  # fmt: skip
        assert client.chat(USER, model=model)["finish_reason"] == "stop"
        assert client.get_stats()["successful_requests"] == 1
        assert [layer["layer"] for layer in client.describe()] == ["queue", "circuit", "backoff", "multiplex"]
