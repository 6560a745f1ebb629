"""Gemini behind @backoff: OpenAI-style messages with a system prompt, a tool call, a stream, an image.

Run: python examples/gemini_chat.py [base_url]
The key is ``GOOGLE_API_KEY`` (or ``GEMINI_API_KEY``); the server is
``base_url``, else Google's. With no key, a local emulator is started and
given a placeholder key, so the example runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff
from resilient.adapters import gemini

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)  # the first bytes of a PNG: enough for the emulator, not for Gemini

chat = backoff(max_retries=3)(gemini.chat)
stream_chat = backoff(max_retries=3)(gemini.stream_chat)
process_image = backoff(max_retries=3)(gemini.process_image)


def main(base_url: str | None = None, api_key: str | None = None) -> dict[str, Any]:
    api_key = api_key or os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
    with server(base_url, real=bool(api_key)) as url:
        options = {"api_key": api_key or "emulated-key", "base_url": url}
        messages = [{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": "What is a circuit breaker?"}]
        answer = chat(messages, **options)
        tool = chat([{"role": "user", "content": "Weather in Rome?"}], tools=[WEATHER], tool_choice="required", **options)
        streamed = "".join(c["text"] for c in stream_chat(messages, **options))
        image = process_image(PNG, "What is in this picture?", **options)
    return {"answer": answer["text"], "streamed": streamed, "tool_calls": tool["tool_calls"], "image_answer": image["text"]}


@contextmanager
def server(base_url: str | None, *, real: bool) -> Iterator[str | None]:
    """``base_url`` if there is one, else the provider's own (``None``) with a real key, else a local emulator's."""
    if base_url or real:
        yield base_url
        return
    from resilient.testing.emulator import Emulator

    with Emulator() as emulator:
        yield emulator.url


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print(result["answer"])
    print("tool calls:", result["tool_calls"])
