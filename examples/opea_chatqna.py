"""OPEA ChatQnA behind @circuit and @backoff: an answer, then the same answer streamed.

Run: python examples/opea_chatqna.py [base_url]
The gateway root is ``base_url``, else ``OPEA_BASE_URL``; with neither, a
local emulator is started so the example runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff, circuit
from resilient.adapters import opea

chatqna = circuit(fail_max=5, reset_timeout=30)(backoff(max_retries=3)(opea.chatqna))
stream_chatqna = backoff(max_retries=3)(opea.stream_chatqna)


def main(base_url: str | None = None) -> dict[str, Any]:
    question = "What is the revenue of Nike in 2023?"
    with server(base_url or os.environ.get("OPEA_BASE_URL")) as url:
        answer = chatqna(question, base_url=url)
        streamed = "".join(c["text"] for c in stream_chatqna(question, base_url=url))
    return {"answer": answer["text"], "streamed": streamed}


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
    print(main(sys.argv[1] if len(sys.argv) > 1 else None)["answer"])
