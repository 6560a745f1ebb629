"""Claude: a decorated stream, a tool call, and the OpenAI-compatible entry point.

Run: python examples/anthropic_chat.py [base_url]
The key is ``ANTHROPIC_API_KEY``; ``base_url`` is the server root (no ``/v1``),
as in the official SDK. With no key, a local emulator is started.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff, circuit, describe
from resilient.adapters import anthropic

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@circuit(fail_max=5, reset_timeout=30)
@backoff(max_retries=3)
def stream(question: str, **options: Any) -> Iterator[dict[str, Any]]:
    """A stream is retried only until its first chunk; the breaker sees how it ended."""
    yield from anthropic.stream_chat([{"role": "user", "content": question}], model="claude-sonnet-4-5", **options)


def main(base_url: str | None = None, api_key: str | None = None) -> dict[str, Any]:
    api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
    with server(base_url, real=bool(api_key)) as url:
        options = {"api_key": api_key or "emulated-key", "base_url": url}
        chunks = list(stream("What is a circuit breaker?", **options))
        tool = backoff(max_retries=3)(anthropic.chat)(
            [{"role": "user", "content": "Weather in Paris?"}], model="claude-sonnet-4-5", tools=[WEATHER],
            tool_choice={"type": "any"}, **options,
        )  # fmt: skip
        completion = backoff(max_retries=3)(anthropic.chat_openai)(
            {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Say hello"}]}, **options
        )
    return {
        "streamed": "".join(c["text"] for c in chunks),
        "usage": chunks[-1]["usage"],
        "tool_calls": tool["tool_calls"],
        "openai_format": completion,
        "layers": describe(stream),
    }


@contextmanager
def server(base_url: str | None, *, real: bool) -> Iterator[str | None]:
    if base_url or real:
        yield base_url
        return
    from resilient.testing.emulator import Emulator

    with Emulator() as emulator:
        yield emulator.url


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print("streamed:", result["streamed"], result["usage"])
    print("tool calls:", result["tool_calls"])
    print("OpenAI format:", result["openai_format"]["choices"][0]["message"]["content"])
