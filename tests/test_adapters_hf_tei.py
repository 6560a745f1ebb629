"""Hugging Face TEI adapter against the emulator, judged by huggingface_hub's InferenceClient."""

from __future__ import annotations

import pytest

from resilient import AuthenticationError, NotFoundError, ProviderError, RateLimitError, ServerError
from resilient.adapters import hf_tei

TOKEN = "hf_test0123456789abcdef"


def test_embed_matches_the_official_client(emulator) -> None:
    client = pytest.importorskip("huggingface_hub").InferenceClient(model=emulator.url + "/embed", token=TOKEN)
    expected = client.feature_extraction("hello")

    got = hf_tei.embed(["hello", "world"], base_url=emulator.url)

    assert got["embeddings"][0] == pytest.approx([float(x) for x in expected[0]])
    assert len(got["embeddings"]) == 2 and len(got["embeddings"][0]) == 384
    assert emulator.requests[-1].path == "/embed"


def test_batch_embed_splits_into_requests_and_keeps_order(emulator) -> None:
    texts = [f"text {i}" for i in range(5)]

    got = hf_tei.batch_embed(texts, batch_size=2, base_url=emulator.url)

    assert got["embeddings"] == hf_tei.embed(texts, base_url=emulator.url)["embeddings"]
    assert len(got["request_ids"]) == 3
    assert len(emulator.requests) == 4


def test_batch_embed_retries_one_batch_with_a_decorated_embed(emulator, fake_clock) -> None:
    from resilient import backoff

    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=True)  # as a gateway in front of TEI sends it

    got = hf_tei.batch_embed(["a", "b", "c"], batch_size=1, embed_with=backoff(hf_tei.embed), base_url=emulator.url)

    assert len(got["embeddings"]) == 3
    assert [r.status for r in emulator.requests] == [200, 429, 200, 429, 200]
    assert fake_clock.sleeps == [1.0, 1.0]


def test_rerank_best_first_with_top_n_and_text(emulator) -> None:
    ranked = hf_tei.rerank("circuit breaker", ["bananas", "circuit breaker", "retry"], return_text=True, base_url=emulator.url)
    top = hf_tei.rerank("circuit breaker", ["bananas", "circuit breaker", "retry"], top_n=1, base_url=emulator.url)

    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert ranked[0] == {"index": 1, "score": pytest.approx(1.0), "text": "circuit breaker"}
    assert [r["index"] for r in top] == [1]


def test_similarity_of_texts_takes_one_request(emulator) -> None:
    same = hf_tei.similarity("hello", "hello", base_url=emulator.url)
    other = hf_tei.similarity("hello", "quantum chromodynamics", base_url=emulator.url)

    assert same == pytest.approx(1.0)
    assert other < same
    assert len(emulator.requests) == 2


def test_similarity_of_vectors_is_cosine_without_a_request() -> None:
    assert hf_tei.similarity([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert hf_tei.similarity([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    assert hf_tei.cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        hf_tei.cosine([1.0], [1.0, 2.0])


# ----------------------------------------------------------------- errors


def test_401(emulator) -> None:
    emulator.add_fault("bad_key", keys=[TOKEN])

    with pytest.raises(AuthenticationError) as caught:
        hf_tei.embed("x", api_key=TOKEN, base_url=emulator.url)

    assert caught.value.provider == "hf_tei"


def test_404(emulator) -> None:
    with pytest.raises(NotFoundError):
        hf_tei.embed("x", base_url=emulator.url + "/nowhere")


@pytest.mark.parametrize(("forced", "hint"), [(None, None), (True, 1.0)])
def test_429_is_a_rate_limit_with_a_gateways_retry_after_only(emulator, fake_clock, forced, hint) -> None:
    # TEI itself sends no Retry-After (@backoff then waits its own delays); a gateway's in front is read.
    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=forced)
    hf_tei.embed("x", base_url=emulator.url)

    with pytest.raises(RateLimitError) as caught:
        hf_tei.rerank("q", ["a"], base_url=emulator.url)

    assert caught.value.retry_after == (None if hint is None else pytest.approx(hint, abs=0.01))


def test_500(emulator) -> None:
    emulator.add_fault("outage", status=500)

    with pytest.raises(ServerError):
        hf_tei.embed("x", base_url=emulator.url)


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
def test_malformed_body(emulator, mode: str) -> None:
    emulator.add_fault("malformed", mode=mode)

    with pytest.raises(ProviderError, match="malformed response"):
        hf_tei.embed("x", base_url=emulator.url)
    with pytest.raises(ProviderError, match="malformed response"):
        hf_tei.rerank("q", ["a"], base_url=emulator.url)
