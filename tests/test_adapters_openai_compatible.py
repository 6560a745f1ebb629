"""The OpenAI-compatible adapter (vLLM, llama.cpp, LM Studio, "LLVM local inference") against the emulator."""

from __future__ import annotations

import pytest
import requests

from resilient import (
    AuthenticationError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from resilient.adapters import openai_compatible as oc

MODEL = "gpt-4o-mini"
USER = [{"role": "user", "content": "What is a circuit breaker?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


KEY = "local-" + "key-0001"  # the emulator's /v1 is OpenAI's, which wants a key


def ask(emulator, **kwargs):
    return oc.chat(USER, model=MODEL, base_url=emulator.url + "/v1", **{"api_key": KEY, **kwargs})


def stream(emulator, **kwargs):
    return list(oc.stream_chat(USER, model=MODEL, base_url=emulator.url + "/v1", **{"api_key": KEY, **kwargs}))


def test_chat_without_a_key_matches_the_official_client(emulator, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    sdk = pytest.importorskip("openai").OpenAI(api_key="unused", base_url=emulator.url + "/v1", max_retries=0)
    expected = sdk.chat.completions.create(model=MODEL, messages=USER)
    emulator.keyless.add("openai")  # a keyless local server, as vLLM without --api-key

    got = ask(emulator, api_key=None)

    assert got["text"] == expected.choices[0].message.content
    assert got["usage"]["output_tokens"] == expected.usage.completion_tokens


def test_no_authorization_header_without_a_key(emulator, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    session = requests.Session()
    sent = []
    session.hooks["response"].append(lambda response, **_: sent.append(response.request.headers.get("Authorization")))

    emulator.keyless.add("openai")  # a keyless local server, as vLLM without --api-key
    ask(emulator, session=session, api_key=None)
    ask(emulator, session=session, api_key="local-secret")

    assert sent == [None, "Bearer local-secret"]


def test_tool_calls_and_their_stream(emulator) -> None:
    whole = ask(emulator, tools=[WEATHER], tool_choice="required")
    last = stream(emulator, tools=[WEATHER], tool_choice="required")[-1]

    assert whole["finish_reason"] == last["finish_reason"] == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in last["tool_calls"]] == [
        (c["name"], c["arguments"]) for c in whole["tool_calls"]
    ]


def test_stream_matches_the_whole_answer(emulator) -> None:
    whole = ask(emulator)

    chunks = stream(emulator)

    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert chunks[-1]["done"] and chunks[-1]["finish_reason"] == "stop"


def test_embeddings_and_models(emulator) -> None:
    result = oc.embed(["a", "b"], model="text-embedding-3-small", base_url=emulator.url + "/v1", api_key=KEY)

    assert len(result["embeddings"]) == 2
    assert MODEL in oc.list_models(base_url=emulator.url + "/v1", api_key=KEY)


def test_the_provider_name_is_the_callers(emulator) -> None:
    emulator.add_fault("outage", status=500)

    with pytest.raises(ServerError) as caught:
        ask(emulator, provider="llama.cpp")

    assert caught.value.provider == "llama.cpp"


def test_docs_say_llvm_inference_is_served_here() -> None:
    assert "LLVM" in oc.__doc__ and "no public LLVM inference API" in oc.__doc__


# ----------------------------------------------------------------- errors


def test_401(emulator) -> None:
    emulator.add_fault("bad_key", keys=["k1"])

    with pytest.raises(AuthenticationError):
        ask(emulator, api_key="k1")


def test_404(emulator) -> None:
    with pytest.raises(NotFoundError):
        oc.chat(USER, model=MODEL, base_url=emulator.url + "/v9")


def test_429_with_retry_after(emulator, fake_clock) -> None:
    emulator.add_fault("rate_limit", rps=1, burst=1)
    ask(emulator)

    with pytest.raises(RateLimitError) as caught:
        ask(emulator)

    assert caught.value.retry_after == pytest.approx(1.0, abs=0.01)


def test_malformed_body(emulator) -> None:
    emulator.add_fault("malformed", mode="wrong_shape")

    with pytest.raises(ProviderError, match="malformed response"):
        ask(emulator)


def test_truncated_stream(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        stream(emulator)
