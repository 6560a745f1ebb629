"""Prebuilt clients: the recommended stack with the seeds' defaults, stats in the seeds' shape, pacing."""

from __future__ import annotations

import pytest

from resilient import FakeClock, RateLimitError, clock
from resilient.adapters import anthropic, openai
from resilient.secrets import fingerprint

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


@pytest.mark.parametrize(
    ("rps", "burst", "sleeps"),
    [
        # After the burst of 2, each call waits for the next request to be back: 1 s to full / 2 requests.
        pytest.param(2, 2, [0.5] * 8, id="whole milliseconds"),
        # A third of a second is announced as 334ms, never 333ms: a key paced on it is not early.
        pytest.param(3, 1, [0.334] * 9, id="a third of a second"),
    ],
)
def test_client_paces_on_rate_limit_headers_instead_of_collecting_429s(
    emulator, fake_clock: FakeClock, rps: int, burst: int, sleeps: list[float]
) -> None:
    emulator.add_fault("rate_limit", rps=rps, burst=burst)
    client = openai.Client(api_key=KEYS[0], base_url=emulator.url + "/v1")
    client.policy.backoff.update(jitter=None, initial_delay=0.1)  # so the waits seen are the pacing's own

    for _ in range(10):
        client.chat(USER, model="gpt-4o-mini")

    statuses = [r.status for r in emulator.requests]
    assert statuses == [200] * 10
    assert fake_clock.sleeps == pytest.approx(sleeps)  # the pool subtracts times: float noise, no more


def test_anthropic_client_paces_on_reset_times_given_to_the_second(emulator, fake_clock: FakeClock) -> None:
    emulator.add_fault("rate_limit", rps=2, burst=2)
    client = anthropic.Client(api_key=KEYS[0], base_url=emulator.url)
    client.policy.backoff.update(jitter=None, initial_delay=0.1)

    for _ in range(10):
        client.chat(USER, model="claude-emulated")

    assert [r.status for r in emulator.requests] == [200] * 10
    # Anthropic's reset time is cut to the second ("...:21Z" for 21.0-21.999): counted to the
    # end of that second, 2 s to full / 2 requests = 1 s, after which both requests are back.
    assert fake_clock.sleeps == [1.0] * 4


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


# --------------------------------------------------------------------------- keyless (local) servers

LOCAL_KEY_VARS = ("OLLAMA_API_KEY", "HF_API_TOKEN", "HF_TOKEN", "OPEA_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "OVMS_API_KEY")


@pytest.fixture
def no_local_keys(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env either
    for var in LOCAL_KEY_VARS:
        monkeypatch.delenv(var, raising=False)


def _local_calls(url: str):
    """(client, its main call) for every local provider, as a user would write them."""
    from resilient.adapters import hf_tei, hf_tgi, ollama, openai_compatible, opea, ovms

    return [
        (ollama.Client(base_url=url), lambda c: c.chat(USER, model="llama3.2:latest")),
        (ollama.Client(base_url=url), lambda c: c.generate("Why is the sky blue?", model="llama3.2:latest")),
        (hf_tgi.Client(base_url=url), lambda c: c.generate_text("Why is the sky blue?")),
        (hf_tgi.Client(base_url=url), lambda c: c.chat(USER)),
        (hf_tei.Client(base_url=url), lambda c: c.embed(["alpha", "beta"])),
        (opea.Client(base_url=url), lambda c: c.chatqna(USER)),
        (openai_compatible.Client(base_url=url + "/v1"), lambda c: c.chat(USER, model="gpt-4o-mini")),
        (ovms.Client(base_url=url), lambda c: c.chat(USER, model="llama-3.2-1b-int4-ov")),
    ]


def test_local_servers_get_a_keyless_client_with_the_same_stack_and_stats(emulator, no_local_keys) -> None:
    emulator.keyless.add("openai")  # TGI's and vLLM's /v1 take no key; OpenAI's own would refuse these calls
    for client, call in _local_calls(emulator.url):
        result = call(client)
        stats = client.get_stats()

        assert [layer["layer"] for layer in client.describe()] == ["queue", "circuit", "backoff", "multiplex"]
        assert stats["endpoints_count"] == 1 and list(stats["keys"]) == ["no-key"]
        assert stats["total_requests"] == stats["successful_requests"] == 1, client
        assert stats["total_tokens"] == result["usage"]["total_tokens"]
        assert "keyless" in repr(client)
    assert {request.key for request in emulator.requests} == {fingerprint(None)}  # no credential was sent


def test_a_local_client_streams_and_counts_the_final_usage(emulator, no_local_keys) -> None:
    from resilient.adapters import ollama

    client = ollama.Client(base_url=emulator.url)
    chunks = list(client.stream_chat(USER, model="llama3.2:latest"))

    assert chunks[-1]["done"] and client.get_stats()["output_tokens"] == chunks[-1]["usage"]["output_tokens"] > 0


def test_a_local_client_uses_a_key_when_one_is_set(emulator, no_local_keys, monkeypatch) -> None:
    from resilient.adapters import ollama

    key = "ollama-" + "proxy-key-0001"
    monkeypatch.setenv("OLLAMA_API_KEY", key)
    client = ollama.Client(base_url=emulator.url)
    client.chat(USER, model="llama3.2:latest")

    assert client.get_stats()["keys"]["OLLAMA_API_KEY"]["total_requests"] == 1
    assert emulator.requests[-1].key == fingerprint(key)


def test_a_keyless_client_reports_a_401_each_time_instead_of_disabling_the_server(emulator, no_local_keys) -> None:
    from resilient.adapters import ollama
    from resilient.errors import AuthenticationError

    emulator.add_fault("bad_key", keys=[None])  # the server now requires a key
    client = ollama.Client(base_url=emulator.url)

    for _ in range(2):
        with pytest.raises(AuthenticationError):
            client.chat(USER, model="llama3.2:latest")

    assert len(emulator.requests) == 2  # asked the server both times: it may have been given a key since
    assert client.get_stats()["keys"]["no-key"]["disabled"] is None


def test_a_keyless_client_is_paced_by_the_servers_rate_limit(emulator, no_local_keys, fake_clock: FakeClock) -> None:
    from resilient.adapters import openai_compatible

    emulator.keyless.add("openai")  # vLLM's /v1 takes no key; OpenAI's own would refuse these calls
    emulator.add_fault("rate_limit", rps=1, burst=1)
    client = openai_compatible.Client(base_url=emulator.url + "/v1")
    client.policy.backoff.update(jitter=None)

    for _ in range(3):
        client.chat(USER, model="gpt-4o-mini")

    assert 200 in [r.status for r in emulator.requests] and client.get_stats()["successful_requests"] == 3


def test_a_provider_that_needs_a_key_fails_at_construction_naming_every_variable(monkeypatch, tmp_path) -> None:
    from resilient.adapters import gemini
    from resilient.errors import NoKeyAvailableError

    monkeypatch.chdir(tmp_path)
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(var, raising=False)

    with pytest.raises(NoKeyAvailableError, match="GOOGLE_API_KEY, GOOGLE_API_KEY_1, .*GEMINI_API_KEY"):
        gemini.Client()


def test_a_client_finds_keys_under_the_providers_second_variable(emulator, monkeypatch, tmp_path) -> None:
    from resilient.adapters import gemini

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", KEYS[0])

    assert list(gemini.Client(base_url=emulator.url).stats()["keys"]) == ["GEMINI_API_KEY"]


def test_a_client_given_a_dict_of_named_keys_sends_the_keys_not_their_names(emulator) -> None:
    from resilient.adapters import anthropic as anthropic_adapter

    secret = "sk-ant-" + "api03-named-0123456789abcdef"
    client = anthropic_adapter.Client(api_key={"primary": secret}, base_url=emulator.url)

    client.chat([{"role": "user", "content": "hi"}], model="claude-3-5-haiku-latest")

    assert list(client.stats()["keys"]) == ["primary"]
    assert [r.status for r in emulator.requests] == [200]
    assert [r.key for r in emulator.requests] == [client.keys.keys[0].fingerprint]


def test_tei_client_sends_each_batch_through_the_stack(emulator, fake_clock: FakeClock) -> None:
    from resilient.adapters import hf_tei

    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=True)  # as a gateway in front of TEI sends it
    client = hf_tei.Client(base_url=emulator.url)
    client.policy.backoff.update(jitter=None)

    got = client.batch_embed(["a", "b", "c"], batch_size=1)

    assert len(got["embeddings"]) == 3
    # A 429 repeats only the batch it refused, and each batch is a call of its own in the stats.
    assert [r.status for r in emulator.requests] == [200, 429, 200, 429, 200]
    assert client.get_stats()["successful_requests"] == 3
    assert client.similarity("hello", "hello") == pytest.approx(1.0)
    assert client.get_stats()["successful_requests"] == 4


def test_anthropic_client_offers_the_openai_format(emulator) -> None:
    client = anthropic.Client(api_key=KEYS[0], base_url=emulator.url)

    answer = client.chat_openai({"model": "claude-emulated", "messages": USER, "max_tokens": 20})
    chunks = list(client.stream_chat_openai({"model": "claude-emulated", "messages": USER, "max_tokens": 20, "stream": True}))

    assert answer["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert client.get_stats()["successful_requests"] == 2


# Calls that ask what is there now: a retry or an open breaker would only delay the answer.
_NOT_STACKED = {"list_models", "model_ready"}


@pytest.mark.parametrize(
    "name",
    ["anthropic", "bedrock", "gemini", "groq", "hf_tei", "hf_tgi", "ollama", "opea", "openai", "openai_compatible", "ovms"],
)
def test_a_client_offers_every_call_of_its_module(name: str) -> None:
    import importlib
    import inspect

    module = importlib.import_module(f"resilient.adapters.{name}")
    calls = {
        attr for attr in module.__all__
        if inspect.isfunction(getattr(module, attr))
        and {"api_key", "embed_with"} & set(inspect.signature(getattr(module, attr)).parameters)
    }  # fmt: skip
    client = module.Client(api_key="test-key-" + "cccc3333")

    assert calls - _NOT_STACKED == set(client.methods)
