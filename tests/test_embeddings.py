"""Embedders: the real MiniLM default (normalised rows, shared per process, concurrent batching) and model errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from resilient.embeddings import EmbeddingModelError, SentenceTransformerEmbedder, _FastEncoder, default_embedder, normalise_rows


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


TEXTS = [
    "What's the way to reverse a Python list?",
    "",
    "  spaced   out  ",
    "Ünïcödé ✓ 東京 — émoji 🙂",
    "word " * 400,  # longer than the model's 256 tokens: truncated
    "How do MAGNETS work?",
] + [f"question {i} " * (i % 7 + 1) for i in range(150)]  # more than one batch, mixed lengths


def test_fast_path_gives_the_sentence_transformers_vectors(minilm):
    assert minilm._fast is not None  # MiniLM is the shape the direct path reproduces
    reference = minilm._model.encode(
        TEXTS, batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    batch = minilm(TEXTS)  # padded batches, sorted by length, order restored
    assert batch.shape == reference.shape and batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch, reference, atol=1e-6)
    for text in TEXTS[:6]:  # one at a time: no padding, no mask
        np.testing.assert_allclose(minilm([text]), reference[TEXTS.index(text)][None, :], atol=1e-6)


def test_other_model_shapes_use_encode():
    class Pooling:
        pooling_mode = "cls"

    class Transformer:
        auto_model = None

    assert _FastEncoder.build([Transformer(), Pooling()], 64) is None
    assert _FastEncoder.build(object(), 64) is None


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
