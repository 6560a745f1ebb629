"""Groq behind @circuit and @backoff, choosing a model from Groq's catalogue by category.

Run: python examples/groq_chat.py [base_url]
The key is ``GROQ_API_KEY``; ``base_url`` includes ``/v1``. With no key, a
local emulator (OpenAI dialect) is started so the example runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff, circuit
from resilient.adapters import groq


@circuit(fail_max=5, reset_timeout=30)
@backoff(max_retries=3)
def ask(question: str, *, model: str, **options: Any) -> dict[str, Any]:
    return groq.chat([{"role": "user", "content": question}], model=model, **options)


def main(base_url: str | None = None, api_key: str | None = None) -> dict[str, Any]:
    api_key = api_key or os.environ.get("GROQ_API_KEY")
    model = next(m for m in groq.list_models("chat") if groq.is_compatible_model(m, "chat") and "instant" in m)
    with server(base_url, real=bool(api_key)) as url:
        options = {"api_key": api_key or "emulated-key", "base_url": url}
        answer = ask("What is a circuit breaker?", model=model, **options)
        second = ask("And a retry budget?", model=model, **options)
    return {"model": model, "answer": answer["text"], "second": second["text"], "vision": groq.list_models("vision")}


@contextmanager
def server(base_url: str | None, *, real: bool) -> Iterator[str | None]:
    """``base_url`` if there is one, else the provider's own (``None``) with a real key, else a local emulator's."""
    if base_url or real:
        yield base_url
        return
    from resilient.testing.emulator import Emulator

    with Emulator() as emulator:
        yield emulator.url + "/v1"


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"{result['model']}: {result['answer']}")
    print("vision models:", ", ".join(result["vision"]))
