"""A local OpenAI-compatible server (vLLM, llama.cpp, LM Studio) behind @backoff: chat, stream, embeddings.

Run: python examples/openai_compatible_chat.py [base_url]
``base_url`` includes ``/v1`` (``OPENAI_COMPATIBLE_BASE_URL``); with
neither, a local emulator is started so the example runs anywhere. This is
also how the seeds' "LLVM optimized local inference" backend is reached.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff
from resilient.adapters import openai_compatible

chat = backoff(max_retries=3)(openai_compatible.chat)
stream_chat = backoff(max_retries=3)(openai_compatible.stream_chat)
embed = backoff(max_retries=3)(openai_compatible.embed)


def main(base_url: str | None = None, model: str = "gpt-4o-mini") -> dict[str, Any]:
    given = base_url or os.environ.get("OPENAI_COMPATIBLE_BASE_URL")
    with server(given) as base:
        messages = [{"role": "user", "content": "What is a circuit breaker?"}]
        answer = chat(messages, model=model, base_url=base)
        streamed = "".join(c["text"] for c in stream_chat(messages, model=model, base_url=base))
        vectors = embed(["circuit", "breaker"], model="text-embedding-3-small", base_url=base)["embeddings"]
    return {"answer": answer["text"], "streamed": streamed, "embeddings": len(vectors)}


@contextmanager
def server(base_url: str | None) -> Iterator[str]:
    """``base_url`` if there is one, else a local emulator's."""
    if base_url:
        yield base_url
        return
    from resilient.testing.emulator import Emulator

    with Emulator(keyless={"openai"}) as emulator:  # a local server: its /v1 routes take no key
        yield emulator.url + "/v1"


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print(result["answer"])
