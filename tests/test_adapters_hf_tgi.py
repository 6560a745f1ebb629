"""Hugging Face TGI adapter against the emulator, judged by huggingface_hub's InferenceClient."""

from __future__ import annotations

import pytest

from resilient import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
    classify,
)
from resilient.adapters import hf_tgi

TOKEN = "hf_test0123456789abcdef"
PROMPT = "Explain gravity"
USER = [{"role": "user", "content": "hello"}]


def generate(emulator, **kwargs):
    return hf_tgi.generate_text(PROMPT, base_url=emulator.url, **kwargs)


def stream(emulator, **kwargs):
    return list(hf_tgi.stream_generate_text(PROMPT, base_url=emulator.url, **kwargs))


def test_generate_text_matches_the_official_client(emulator) -> None:
    client = pytest.importorskip("huggingface_hub").InferenceClient(model=emulator.url, token=TOKEN)
    expected = client.text_generation(PROMPT, max_new_tokens=50, details=True)

    got = generate(emulator, parameters={"max_new_tokens": 50})

    assert got["text"] == expected.generated_text
    assert got["usage"]["output_tokens"] == expected.details.generated_tokens
    assert expected.details.finish_reason == "eos_token" and got["finish_reason"] == "stop"
    assert emulator.requests[-1].path == "/generate"


def test_max_new_tokens_ends_in_length(emulator) -> None:
    got = generate(emulator, parameters={"max_new_tokens": 3})

    assert got["finish_reason"] == "length" and got["usage"]["output_tokens"] == 3


def test_stream_tokens_match_the_official_client(emulator) -> None:
    client = pytest.importorskip("huggingface_hub").InferenceClient(model=emulator.url, token=TOKEN)
    expected = "".join(client.text_generation(PROMPT, max_new_tokens=3, stream=True))

    chunks = stream(emulator, parameters={"max_new_tokens": 3})

    assert "".join(c["text"] for c in chunks) == expected
    assert [c["done"] for c in chunks].count(True) == 1
    assert chunks[-1]["finish_reason"] == "length" and chunks[-1]["usage"]["output_tokens"] == 3


def test_chat_on_the_messages_api(emulator) -> None:
    client = pytest.importorskip("huggingface_hub").InferenceClient(base_url=emulator.url, token=TOKEN)
    expected = client.chat_completion(USER, model="tgi", max_tokens=20)

    got = hf_tgi.chat(USER, base_url=emulator.url, max_tokens=20, api_key=TOKEN)
    chunks = list(hf_tgi.stream_chat(USER, base_url=emulator.url, max_tokens=20, api_key=TOKEN))

    assert got["text"] == expected.choices[0].message.content == "".join(c["text"] for c in chunks)
    assert emulator.requests[-1].path == "/v1/chat/completions"


def test_chat_tool_calls(emulator) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}

    got = hf_tgi.chat(USER, base_url=emulator.url, tools=[tool], api_key=TOKEN)

    assert got["finish_reason"] == "tool_calls" and got["tool_calls"][0]["name"] == "lookup"


def test_token_from_hf_token_is_sent(emulator, monkeypatch) -> None:
    monkeypatch.delenv("HF_API_TOKEN", raising=False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    emulator.add_fault("bad_key", keys=[TOKEN])

    with pytest.raises(AuthenticationError) as caught:
        generate(emulator)

    assert caught.value.provider == "hf_tgi" and TOKEN not in str(caught.value)


def test_no_token_is_needed_locally(emulator, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HF_API_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)

    assert generate(emulator)["text"]


# ----------------------------------------------------------------- errors


def test_404(emulator) -> None:
    with pytest.raises(NotFoundError):
        hf_tgi.generate_text(PROMPT, base_url=emulator.url + "/nowhere")


@pytest.mark.parametrize(("forced", "hint"), [(None, None), (True, 1.0)])
def test_429_is_a_rate_limit_with_a_gateways_retry_after_only(emulator, fake_clock, forced, hint) -> None:
    # TGI itself sends no Retry-After (@backoff then waits its own delays); a gateway's in front is read.
    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=forced, provider="huggingface")
    generate(emulator)

    with pytest.raises(RateLimitError) as caught:
        generate(emulator)

    assert caught.value.retry_after == (None if hint is None else pytest.approx(hint, abs=0.01))


def test_500(emulator) -> None:
    emulator.add_fault("outage", status=500)

    with pytest.raises(ServerError) as caught:
        generate(emulator)

    assert caught.value.request_id


def test_invalid_parameters_are_an_invalid_request(emulator) -> None:
    with pytest.raises(ProviderError) as caught:
        generate(emulator, parameters={"max_new_tokens": -1})

    assert caught.value.status in (400, 422) and "max_new_tokens" in caught.value.message


@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
def test_malformed_body(emulator, mode: str) -> None:
    emulator.add_fault("malformed", mode=mode)

    with pytest.raises(ProviderError, match="malformed response"):
        generate(emulator)


def test_malformed_stream_event(emulator) -> None:
    emulator.add_fault("malformed", mode="wrong_shape")

    with pytest.raises(ProviderError, match="malformed response"):
        stream(emulator)


def test_truncated_stream(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        stream(emulator)


def test_error_event_mid_stream(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2, error=True)

    with pytest.raises(ServerError, match="generation: .*mid-stream"):
        stream(emulator)


@pytest.mark.parametrize(
    "event",
    [
        # TGI's Messages API: the status travels in the error object.
        {"error": {"message": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096", "http_status_code": 422}},
        # Without one, TGI's error_type says what kind of failure it is.
        {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096", "error_type": "validation"},
    ],
)
def test_a_validation_error_in_a_chat_stream_is_an_invalid_request_not_retried(emulator, event: dict) -> None:
    emulator.add_fault("malformed", mode="wrong_shape", body=event)

    with pytest.raises(InvalidRequestError, match="Input validation error") as caught:
        list(hf_tgi.stream_chat(USER, base_url=emulator.url, api_key=TOKEN))

    assert caught.value.status == 422 and classify(caught.value).retryable is False
