"""Ollama behind @circuit and @backoff: a chat, a streamed answer and embeddings.

Run: python examples/ollama_chat.py [base_url]
The server is ``base_url``, else ``OLLAMA_HOST``; with neither, a local
emulator of Ollama is started so the example runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff, circuit, describe
from resilient.adapters import ollama

MODEL = "llama3.2:latest"


@circuit(fail_max=5, reset_timeout=30)
@backoff(max_retries=3)
def ask(question: str, *, base_url: str) -> dict[str, Any]:
    return ollama.chat([{"role": "user", "content": question}], model=MODEL, base_url=base_url)


@backoff(max_retries=3)
def stream(question: str, *, base_url: str) -> Iterator[dict[str, Any]]:
    yield from ollama.stream_chat([{"role": "user", "content": question}], model=MODEL, base_url=base_url)


def main(base_url: str | None = None) -> dict[str, Any]:
    with server(base_url or os.environ.get("OLLAMA_HOST")) as url:
        answer = ask("What is a circuit breaker?", base_url=url)
        streamed = "".join(chunk["text"] for chunk in stream("What is a circuit breaker?", base_url=url))
        vectors = backoff(max_retries=3)(ollama.embed)(["circuit", "breaker"], base_url=url)["embeddings"]
    return {"answer": answer["text"], "streamed": streamed, "dimensions": len(vectors[0]), "layers": describe(ask)}


@contextmanager
def server(base_url: str | None) -> Iterator[str]:
    """``base_url`` if there is one, else a local emulator's."""
    if base_url:
        yield base_url
        return
    from resilient.testing.emulator import Emulator

    with Emulator() as emulator:
        yield emulator.url


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print(result["answer"])
    print(f"streamed the same: {result['streamed'] == result['answer']}; embeddings of {result['dimensions']} dimensions")
