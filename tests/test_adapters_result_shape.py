"""Every adapter's chat answers with the one result dict the README documents, and every stream ends with the
same final chunk, whatever the provider."""

from __future__ import annotations

from typing import Any

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

def _v1(url: str) -> str:
    return url + "/v1"


#: name -> (module, function, prompt, its other arguments given the emulator's URL); each function's stream is
#: ``stream_<function>`` with the same arguments, so the two tests below go through the same calls.
CALLS = {
    "openai.chat": (openai, "chat", MESSAGES,
        lambda url: {"model": "gpt-4o-mini", "api_key": KEY, "base_url": _v1(url)}),
    "groq.chat": (groq, "chat", MESSAGES,
        lambda url: {"model": "llama-3.1-8b-instant", "api_key": KEY, "base_url": _v1(url)}),
    "anthropic.chat": (anthropic, "chat", MESSAGES,
        lambda url: {"model": "claude-3-5-haiku-latest", "api_key": KEY, "base_url": url}),
    "gemini.chat": (gemini, "chat", MESSAGES,
        lambda url: {"model": "gemini-2.0-flash", "api_key": KEY, "base_url": url}),
    "bedrock.chat": (bedrock, "chat", MESSAGES,
        lambda url: {"model": "anthropic.claude-3-haiku", "api_key": KEY, "endpoint_url": url}),
    "ollama.chat": (ollama, "chat", MESSAGES, lambda url: {"model": "llama3.2", "base_url": url}),
    "ollama.generate": (ollama, "generate", "Hi", lambda url: {"model": "llama3.2", "base_url": url}),
    "hf_tgi.generate_text": (hf_tgi, "generate_text", "Hi", lambda url: {"base_url": url}),
    "hf_tgi.chat": (hf_tgi, "chat", MESSAGES, lambda url: {"base_url": url}),
    "ovms.chat": (ovms, "chat", MESSAGES, lambda url: {"model": "llama-3.2-1b-int4-ov", "base_url": url}),
    "opea.chatqna": (opea, "chatqna", "Hi", lambda url: {"base_url": url}),
    "openai_compatible.chat": (openai_compatible, "chat", MESSAGES, lambda url: {"model": "m", "base_url": _v1(url)}),
}  # fmt: skip


def _call(name: str, url: str, *, stream: bool = False) -> Any:
    module, function, prompt, arguments = CALLS[name]
    return getattr(module, "stream_" + function if stream else function)(prompt, **arguments(url))


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_chat_result_has_every_documented_key(emulator, call: str) -> None:
    emulator.keyless.add("openai")  # TGI's Messages API and OpenAI-compatible servers take no key

    result = _call(call, emulator.url)

    assert set(result) == DOCUMENTED
    assert set(result["usage"]) >= USAGE
    assert isinstance(result["text"], str) and result["text"]


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_streams_final_chunk_has_every_documented_key(emulator, call: str) -> None:
    emulator.keyless.add("openai")

    *pieces, final = _call(call, emulator.url, stream=True)

    assert set(final) == FINAL_CHUNK
    assert final["done"] is True and final["text"] == ""
    assert set(final["usage"]) >= USAGE
    assert pieces and all(piece == {"text": piece["text"], "done": False} for piece in pieces)
