"""Every adapter's chat answers with the one result dict the README documents, and every stream ends with the
same final chunk, whatever the provider."""

from __future__ import annotations

import pytest

from resilient.adapters import (
    anthropic,
    bedrock,
    gemini,
    groq,
    hf_tgi,
    ollama,
    openai,
    openai_compatible,
    opea,
    ovms,
)

KEY = "sk-" + "shape-0123456789abcdefghij"
MESSAGES = [{"role": "user", "content": "Hi"}]
DOCUMENTED = {"text", "model", "finish_reason", "tool_calls", "usage", "request_id", "rate_limit", "raw"}
FINAL_CHUNK = {"text", "done", "finish_reason", "tool_calls", "usage", "request_id", "rate_limit"}
USAGE = {"input_tokens", "output_tokens", "total_tokens"}

CALLS = {
    "openai.chat": lambda url: openai.chat(MESSAGES, model="gpt-4o-mini", api_key=KEY, base_url=url + "/v1"),
    "groq.chat": lambda url: groq.chat(MESSAGES, model="llama-3.1-8b-instant", api_key=KEY, base_url=url + "/v1"),
    "anthropic.chat": lambda url: anthropic.chat(MESSAGES, model="claude-3-5-haiku-latest", api_key=KEY, base_url=url),
    "gemini.chat": lambda url: gemini.chat(MESSAGES, model="gemini-2.0-flash", api_key=KEY, base_url=url),
    "bedrock.chat": lambda url: bedrock.chat(MESSAGES, model="anthropic.claude-3-haiku", api_key=KEY, endpoint_url=url),
    "ollama.chat": lambda url: ollama.chat(MESSAGES, model="llama3.2", base_url=url),
    "ollama.generate": lambda url: ollama.generate("Hi", model="llama3.2", base_url=url),
    "hf_tgi.generate_text": lambda url: hf_tgi.generate_text("Hi", base_url=url),
    "hf_tgi.chat": lambda url: hf_tgi.chat(MESSAGES, base_url=url),
    "ovms.chat": lambda url: ovms.chat(MESSAGES, model="llama-3.2-1b-int4-ov", base_url=url),
    "opea.chatqna": lambda url: opea.chatqna("Hi", base_url=url),
    "openai_compatible.chat": lambda url: openai_compatible.chat(MESSAGES, model="m", base_url=url + "/v1"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_chat_result_has_every_documented_key(emulator, call: str) -> None:
    emulator.keyless.add("openai")  # TGI's Messages API and OpenAI-compatible servers take no key

    result = CALLS[call](emulator.url)

    assert set(result) == DOCUMENTED
    assert set(result["usage"]) >= USAGE
    assert isinstance(result["text"], str) and result["text"]


STREAMS = {
    "openai.stream_chat": lambda url: openai.stream_chat(MESSAGES, model="gpt-4o-mini", api_key=KEY, base_url=url + "/v1"),
    "groq.stream_chat": lambda url: groq.stream_chat(
        MESSAGES, model="llama-3.1-8b-instant", api_key=KEY, base_url=url + "/v1"
    ),
    "anthropic.stream_chat": lambda url: anthropic.stream_chat(
        MESSAGES, model="claude-3-5-haiku-latest", api_key=KEY, base_url=url
    ),
    "gemini.stream_chat": lambda url: gemini.stream_chat(MESSAGES, model="gemini-2.0-flash", api_key=KEY, base_url=url),
    "bedrock.stream_chat": lambda url: bedrock.stream_chat(
        MESSAGES, model="anthropic.claude-3-haiku", api_key=KEY, endpoint_url=url
    ),
    "ollama.stream_chat": lambda url: ollama.stream_chat(MESSAGES, model="llama3.2", base_url=url),
    "ollama.stream_generate": lambda url: ollama.stream_generate("Hi", model="llama3.2", base_url=url),
    "hf_tgi.stream_generate_text": lambda url: hf_tgi.stream_generate_text("Hi", base_url=url),
    "hf_tgi.stream_chat": lambda url: hf_tgi.stream_chat(MESSAGES, base_url=url),
    "ovms.stream_chat": lambda url: ovms.stream_chat(MESSAGES, model="llama-3.2-1b-int4-ov", base_url=url),
    "opea.stream_chatqna": lambda url: opea.stream_chatqna("Hi", base_url=url),
    "openai_compatible.stream_chat": lambda url: openai_compatible.stream_chat(MESSAGES, model="m", base_url=url + "/v1"),
}


@pytest.mark.parametrize("call", sorted(STREAMS))
def test_a_streams_final_chunk_has_every_documented_key(emulator, call: str) -> None:
    emulator.keyless.add("openai")

    *pieces, final = STREAMS[call](emulator.url)

    assert set(final) == FINAL_CHUNK
    assert final["done"] is True and final["text"] == ""
    assert set(final["usage"]) >= USAGE
    assert pieces and all(piece == {"text": piece["text"], "done": False} for piece in pieces)
