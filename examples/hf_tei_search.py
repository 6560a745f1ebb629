"""Hugging Face TEI behind @backoff: embed documents in batches, rerank them, compare two texts.

Run: python examples/hf_tei_search.py [base_url]
The server root is ``base_url``, else ``TEI_BASE_URL``; with neither, a local
emulator is started so the example runs anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resilient import backoff
from resilient.adapters import hf_tei

DOCUMENTS = ["A circuit breaker fails fast.", "Backoff waits between retries.", "Bananas are yellow."]

embed = backoff(max_retries=3)(hf_tei.embed)  # retried per batch: a retry never repeats the batches that passed
rerank = backoff(max_retries=3)(hf_tei.rerank)
similarity = backoff(max_retries=3)(hf_tei.similarity)


def main(base_url: str | None = None) -> dict[str, Any]:
    with server(base_url or os.environ.get("TEI_BASE_URL")) as url:
        vectors = hf_tei.batch_embed(DOCUMENTS, batch_size=2, embed_with=embed, base_url=url)["embeddings"]
        best = rerank("A circuit breaker fails fast.", DOCUMENTS, top_n=1, base_url=url)[0]
        score = similarity("circuit breaker", "circuit breaker", base_url=url)
    return {"vectors": len(vectors), "best": DOCUMENTS[best["index"]], "self_similarity": score}


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
    print(f"best match: {result['best']}")
