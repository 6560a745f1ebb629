"""The official ollama client is the judge of the emulator's Ollama API."""

from __future__ import annotations

import ollama
import pytest

from resilient.testing.emulator.content import answer, count_tokens


def weather(city: str) -> str:
    """Weather for a city.

    Args:
        city: the city
    """
    return "sunny"


@pytest.fixture
def client(emulator):
    return ollama.Client(host=emulator.url)


def test_chat_answer_and_counts(client):
    reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Why is the sky blue?"}])
    expected, _ = answer("Why is the sky blue?")
    assert reply.message.content == expected
    assert reply.done and reply.done_reason == "stop"
    assert (reply.prompt_eval_count, reply.eval_count) == (count_tokens("Why is the sky blue?"), count_tokens(expected))


def test_chat_stream_ends_with_done_line(client):
    parts = list(client.chat(model="llama3.2", messages=[{"role": "user", "content": "Why?"}], stream=True))
    assert "".join(p.message.content for p in parts) == answer("Why?")[0]
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].eval_count == len(parts) - 1


def test_chat_tool_call(client):
    reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": "Paris weather"}], tools=[weather])
    call = reply.message.tool_calls[0]
    assert (call.function.name, dict(call.function.arguments)) == ("weather", {"city": "Paris weather"})


def test_generate_with_num_predict(client):
    reply = client.generate(model="llama3.2", prompt="Tell me a story", options={"num_predict": 2})
    assert reply.response == "Emulated answer"
    assert reply.done_reason == "length" and reply.eval_count == 2
    streamed = list(client.generate(model="llama3.2", prompt="Tell me a story", stream=True))
    assert "".join(p.response for p in streamed) == answer("Tell me a story")[0]


def test_embed_and_tags(client):
    reply = client.embed(model="nomic-embed-text", input=["a", "b"])
    assert [len(v) for v in reply.embeddings] == [768, 768]
    assert "llama3.2:latest" in [m.model for m in client.list().models]


def test_rate_limit_is_a_response_error_with_status_429(client, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=1, burst=1)
    client.generate(model="llama3.2", prompt="x", stream=False)
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model="llama3.2", prompt="x", stream=False)
    assert caught.value.status_code == 429 and "Rate limit" in caught.value.error


def test_error_line_mid_stream(client, emulator):
    emulator.add_fault("truncate_stream", after=2, error=True)
    with pytest.raises(ollama.ResponseError):
        list(client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi there"}], stream=True))


def test_invalid_request_gets_ollamas_error_body(client):
    with pytest.raises(ollama.ResponseError) as caught:
        client.embed(model="nomic-embed-text", input=[])
    assert caught.value.status_code == 400
