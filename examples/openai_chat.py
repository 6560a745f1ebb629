"""OpenAI through the prebuilt client: two keys, the recommended stack, usage per key.

Run: python examples/openai_chat.py [base_url]
Keys come from ``OPENAI_API_KEY``, ``OPENAI_API_KEY_1``, ...; ``base_url``
includes ``/v1``. With no key, a local emulator is started so the example
runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient.adapters import openai


def main(base_url: str | None = None, api_keys: list[str] | None = None) -> dict[str, Any]:
    real = bool(os.environ.get("OPENAI_API_KEY"))
    with server(base_url, real=real) as url:
        client = openai.Client(api_key=api_keys or (None if real else ["emulated-key-1", "emulated-key-2"]), base_url=url)
        answers = [client.chat([{"role": "user", "content": q}], model="gpt-4o-mini")["text"]
                   for q in ("What is a circuit breaker?", "What is a retry budget?", "What is jitter?")]  # fmt: skip
        streamed = "".join(
            chunk["text"] for chunk in client.stream_chat([{"role": "user", "content": "Say hello"}], model="gpt-4o-mini")
        )
        vectors = client.embed(["alpha", "beta"])["embeddings"]
        return {"answers": answers, "streamed": streamed, "dimensions": len(vectors[0]), "stats": client.get_stats()}


@contextmanager
def server(base_url: str | None, *, real: bool) -> Iterator[str | None]:
    """``base_url`` if given, else OpenAI's own (``None``) with a real key, else a local emulator's."""
    if base_url or real:
        yield base_url
        return
    from resilient.testing.emulator import Emulator

    with Emulator() as emulator:
        yield emulator.url + "/v1"


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else None)
    for text in result["answers"]:
        print(text)
    print("streamed:", result["streamed"])
    stats = result["stats"]
    print(f"{stats['total_requests']} requests over {stats['endpoints_count']} keys, {stats['total_tokens']} tokens")
    for key, usage in stats["keys"].items():
        print(f"  {key}: {usage['total_requests']} requests, {usage['total_tokens']} tokens")
