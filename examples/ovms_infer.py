"""OpenVINO Model Server behind @backoff: /v3 chat and a KServe v2 inference.

Run: python examples/ovms_infer.py [base_url]
The server root is ``base_url``, else ``OVMS_BASE_URL``; with neither, a
local emulator is started so the example runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff
from resilient.adapters import ovms

chat = backoff(max_retries=3)(ovms.chat)
infer = backoff(max_retries=3)(ovms.infer)


def main(base_url: str | None = None, model: str = "llama-3.2-1b-int4-ov") -> dict[str, Any]:
    with server(base_url or os.environ.get("OVMS_BASE_URL")) as url:
        reply = chat([{"role": "user", "content": "What is OpenVINO?"}], model=model, base_url=url)
        tensor = {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["circuit", "breaker"]}
        result = infer("embedder", [tensor], base_url=url)
    return {"answer": reply["text"], "output_shape": result["outputs"]["embeddings"]["shape"]}


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
    print(result["answer"], result["output_shape"])
