"""Hugging Face TGI behind @backoff: raw text generation, its token stream, and chat.

Run: python examples/hf_tgi_generate.py [base_url]
The server root is ``base_url``, else ``TGI_BASE_URL``; with neither, a local
emulator is started so the example runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff
from resilient.adapters import hf_tgi

generate_text = backoff(max_retries=3)(hf_tgi.generate_text)
stream_generate_text = backoff(max_retries=3)(hf_tgi.stream_generate_text)
chat = backoff(max_retries=3)(hf_tgi.chat)


def main(base_url: str | None = None) -> dict[str, Any]:
    with server(base_url or os.environ.get("TGI_BASE_URL")) as url:
        text = generate_text("Explain gravity", parameters={"max_new_tokens": 40}, base_url=url)
        tokens = [c["text"] for c in stream_generate_text("Explain gravity", parameters={"max_new_tokens": 40}, base_url=url)]
        reply = chat([{"role": "user", "content": "Explain gravity"}], base_url=url, max_tokens=40)
    return {"text": text["text"], "tokens": tokens, "chat": reply["text"], "finish_reason": text["finish_reason"]}


@contextmanager
def server(base_url: str | None) -> Iterator[str]:
    """``base_url`` if there is one, else a local emulator's."""
    if base_url:
        yield base_url
        return
    from resilient.testing.emulator import Emulator

    with Emulator(keyless={"openai"}) as emulator:  # a local server: its /v1 routes take no key
        yield emulator.url


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else None)
    print(result["text"])
