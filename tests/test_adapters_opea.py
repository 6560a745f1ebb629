"""OPEA ChatQnA adapter against the emulator."""

from __future__ import annotations

import pytest

from resilient import (
    AuthenticationError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from resilient.adapters import opea

QUESTION = "What is the revenue of Nike in 2023?"
USER = [{"role": "user", "content": QUESTION}]


def test_chatqna_answers_an_openai_shaped_result(emulator) -> None:
    got = opea.chatqna(USER, base_url=emulator.url)

    assert got["text"] and got["finish_reason"] == "stop"
    assert got["usage"]["output_tokens"] > 0
    assert emulator.requests[-1].path == "/v1/chatqna"


def test_a_question_string_is_accepted(emulator) -> None:
    assert opea.chatqna(QUESTION, base_url=emulator.url)["text"] == opea.chatqna(USER, base_url=emulator.url)["text"]


def test_stream_decodes_byte_literals_and_ends_at_done(emulator) -> None:
    whole = opea.chatqna(USER, base_url=emulator.url)

    chunks = list(opea.stream_chatqna(USER, base_url=emulator.url))

    assert len(chunks) > 2
    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert [c["done"] for c in chunks].count(True) == 1 and chunks[-1]["finish_reason"] == "stop"


def test_stream_reads_openai_chunks_too() -> None:
    text, reason = opea._token('{"choices": [{"delta": {"content": "Hi"}, "finish_reason": "length"}]}', None)

    assert (text, reason) == ("Hi", "length")


def test_max_tokens_is_passed_on(emulator) -> None:
    got = opea.chatqna(USER, base_url=emulator.url, max_tokens=2)

    assert got["finish_reason"] == "length" and got["usage"]["output_tokens"] == 2


# ----------------------------------------------------------------- errors


def test_401(emulator) -> None:
    emulator.add_fault("bad_key", keys=["k1"])

    with pytest.raises(AuthenticationError) as caught:
        opea.chatqna(USER, api_key="k1", base_url=emulator.url)

    assert caught.value.provider == "opea"


def test_404(emulator) -> None:
    with pytest.raises(NotFoundError):
        opea.chatqna(USER, base_url=emulator.url + "/nowhere")


@pytest.mark.parametrize(("forced", "hint"), [(None, None), (True, 1.0)])
def test_429_is_a_rate_limit_with_a_gateways_retry_after_only(emulator, fake_clock, forced, hint) -> None:
    # OPEA itself sends no Retry-After (@backoff then waits its own delays); a gateway's in front is read.
    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=forced)
    opea.chatqna(USER, base_url=emulator.url)

    with pytest.raises(RateLimitError) as caught:
        list(opea.stream_chatqna(USER, base_url=emulator.url))

    assert caught.value.retry_after == (None if hint is None else pytest.approx(hint, abs=0.01))


def test_500_carries_the_detail(emulator) -> None:
    emulator.add_fault("outage", status=500)

    with pytest.raises(ServerError) as caught:
        opea.chatqna(USER, base_url=emulator.url)

    assert "error while processing" in caught.value.message


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
def test_malformed_body(emulator, mode: str) -> None:
    emulator.add_fault("malformed", mode=mode)

    with pytest.raises(ProviderError, match="malformed response"):
        opea.chatqna(USER, base_url=emulator.url)


def test_malformed_stream_event(emulator) -> None:
    emulator.add_fault("malformed", mode="wrong_shape")

    with pytest.raises(ProviderError, match="malformed response"):
        list(opea.stream_chatqna(USER, base_url=emulator.url))


def test_truncated_stream(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        list(opea.stream_chatqna(USER, base_url=emulator.url))


@pytest.mark.parametrize("event", [{"choices": ["x"]}, {"choices": [{"delta": "x"}]}])
def test_wrong_shaped_openai_chunk_is_malformed(emulator, event: dict) -> None:
    emulator.add_fault("malformed", mode="wrong_shape", body=event)

    with pytest.raises(ProviderError, match="malformed response") as caught:
        list(opea.stream_chatqna(USER, base_url=emulator.url))

    assert type(caught.value) is ProviderError and caught.value.status == 200
