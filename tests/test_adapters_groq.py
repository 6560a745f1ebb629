"""Groq adapter against the emulator's OpenAI dialect, judged by the official openai client; its catalogue."""

from __future__ import annotations

import pytest

from resilient import AuthenticationError, OverloadedError, RateLimitError, ServerError, classify
from resilient.adapters import groq

KEY = "gsk_test0123456789"
MODEL = "llama-3.3-70b-versatile"
USER = [{"role": "user", "content": "What is a circuit breaker?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def ask(emulator, **kwargs):
    return groq.chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url + "/v1", **kwargs)


def test_chat_matches_the_official_openai_client(emulator) -> None:
    sdk = pytest.importorskip("openai").OpenAI(api_key=KEY, base_url=emulator.url + "/v1", max_retries=0)
    expected = sdk.chat.completions.create(model=MODEL, messages=USER)

    got = ask(emulator)

    assert got["text"] == expected.choices[0].message.content
    assert got["model"] == expected.model
    assert got["finish_reason"] == "stop"
    assert got["usage"]["total_tokens"] == expected.usage.total_tokens


def test_tool_calls(emulator) -> None:
    got = ask(emulator, tools=[WEATHER], tool_choice="required")

    assert got["finish_reason"] == "tool_calls"
    assert [c["name"] for c in got["tool_calls"]] == ["get_weather"]
    assert set(got["tool_calls"][0]["arguments"]) == {"city"}


def test_stream_matches_the_whole_answer(emulator) -> None:
    whole = ask(emulator)

    chunks = list(groq.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url + "/v1"))

    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert chunks[-1]["done"] and chunks[-1]["usage"] == whole["usage"]


def test_errors_name_groq(emulator) -> None:
    emulator.add_fault("bad_key", keys=[KEY])

    with pytest.raises(AuthenticationError) as caught:
        ask(emulator)

    assert caught.value.provider == "groq" and KEY not in str(caught.value)


def test_429_carries_retry_after(emulator, fake_clock) -> None:
    emulator.add_fault("rate_limit", rps=2, burst=1)
    ask(emulator)

    with pytest.raises(RateLimitError) as caught:
        ask(emulator)

    assert caught.value.retry_after == pytest.approx(0.5, abs=0.01)


def test_missing_key_names_groq_api_key(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(AuthenticationError, match="GROQ_API_KEY"):
        groq.chat(USER, model=MODEL)


def test_default_base_url_is_groqs_openai_path(monkeypatch) -> None:
    monkeypatch.delenv("GROQ_BASE_URL", raising=False)

    assert groq._base(None) == "https://api.groq.com/openai/v1"


# ----------------------------------------------------------------- catalogue


def test_list_models_by_category() -> None:
    assert groq.list_models("audio") == ["playai-tts", "playai-tts-arabic", "whisper-large-v3", "whisper-large-v3-turbo"]
    assert groq.list_models("vision") == [
        "meta-llama/llama-4-maverick-17b-128e-instruct",
        "meta-llama/llama-4-scout-17b-16e-instruct",
    ]
    assert "llama-3.1-8b-instant" in groq.list_models("chat")
    assert len(groq.list_models()) == len(groq.MODELS)


def test_list_models_online_asks_the_api(emulator) -> None:
    online = groq.list_models(online=True, api_key=KEY, base_url=emulator.url + "/v1")

    assert online and online == sorted(online)
    assert emulator.requests[-1].path == "/v1/models"


@pytest.mark.parametrize(
    ("name", "category", "expected"),
    [
        ("llama-3.3-70b-versatile", "chat", True),
        ("llama-3.3-70b-versatile", "vision", False),
        ("meta-llama/llama-4-scout-17b-16e-instruct", "vision", True),
        ("meta-llama/llama-4-scout-17b-16e-instruct", "chat", True),
        ("whisper-large-v3", "chat", False),
        ("whisper-large-v3", "audio", True),
        ("distil-whisper-large-v3-en", "audio", True),
        ("llama-3.2-90b-vision-preview", "vision", True),
    ],
)
def test_is_compatible_model(name: str, category: str, expected: bool) -> None:
    assert groq.is_compatible_model(name, category) is expected


def test_an_unknown_category_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="chat"):
        groq.list_models("image")


CAPACITY_CALLS = {
    "chat": lambda emu: ask(emu),
    "stream_chat": lambda emu: list(groq.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emu.url + "/v1")),
    "list_models": lambda emu: groq.list_models(online=True, api_key=KEY, base_url=emu.url + "/v1"),
}


@pytest.mark.parametrize("call", CAPACITY_CALLS)
def test_498_capacity_exceeded_is_an_overload_to_retry(emulator, call: str) -> None:
    # Groq's flex tier answers 498 when out of capacity and asks for a retry with backoff.
    emulator.add_fault("error_rate", rate=1.0, status=498)

    with pytest.raises(OverloadedError) as caught:
        CAPACITY_CALLS[call](emulator)

    assert caught.value.status == 498 and caught.value.provider == "groq" and caught.value.request_id
    assert classify(caught.value).retryable is True


def test_a_stream_groq_stopped_early_raises_a_server_error(emulator) -> None:
    # x_groq.error says why Groq stopped generating; ending quietly would pass a partial answer off as whole.
    chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": None}], "x_groq": {"id": "req_1", "error": "upstream failure"}}
    emulator.add_fault("malformed", mode="wrong_shape", body=chunk)

    with pytest.raises(ServerError, match="upstream failure") as caught:
        list(groq.stream_chat(USER, model=MODEL, api_key=KEY, base_url=emulator.url + "/v1"))

    assert classify(caught.value).retryable is True
