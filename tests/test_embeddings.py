"""Embedders: the real MiniLM default (normalised rows, shared per process, concurrent batching) and model errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from resilient.embeddings import EmbeddingModelError, SentenceTransformerEmbedder, default_embedder, normalise_rows



@pytest.fixture(scope="module")
def minilm():
    embedder = default_embedder()
    embedder.load()
    return embedder


def test_default_embedder_gives_normalised_float32_rows(minilm):
    vectors = minilm(["What is the capital of France?", "Which city is France's capital?", "How do magnets work?"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert default_embedder() is minilm  # loaded once per process


def test_concurrent_callers_are_encoded_together(minilm):
    before = minilm.batches
    barrier = threading.Barrier(6)
    out = {}

    def call(i):
        barrier.wait()
        out[i] = minilm([f"question number {i}"])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == 6 and all(v.shape == (1, 384) for v in out.values())
    assert minilm.batches - before < 6
    np.testing.assert_allclose(out[3][0], minilm(["question number 3"])[0], atol=1e-5)


def test_missing_model_says_what_was_tried(tmp_path):
    embedder = SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))
    with pytest.raises(EmbeddingModelError, match="embedder= argument") as info:
        embedder(["hi"])
    assert "no-such-model" in str(info.value)


def test_normalise_rows():
    rows = normalise_rows([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert rows.dtype == np.float32
