"""OpenVINO Model Server adapter against the emulator: /v3 chat and embeddings, KServe v2 infer."""

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
from resilient.adapters import ovms

MODEL = "llama-3.2-1b-int4-ov"
USER = [{"role": "user", "content": "What is a circuit breaker?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def ask(emulator, **kwargs):
    return ovms.chat(USER, model=MODEL, base_url=emulator.url, **kwargs)


def test_chat_goes_to_v3_and_matches_the_official_openai_client(emulator) -> None:
    sdk = pytest.importorskip("openai").OpenAI(api_key="unused", base_url=emulator.url + "/v3", max_retries=0)
    expected = sdk.chat.completions.create(model=MODEL, messages=USER)

    got = ask(emulator)

    assert emulator.requests[-1].path == "/v3/chat/completions"
    assert got["text"] == expected.choices[0].message.content
    assert got["finish_reason"] == "stop"
    assert got["usage"]["total_tokens"] == expected.usage.total_tokens


def test_stream_and_tool_calls(emulator) -> None:
    whole = ask(emulator)
    chunks = list(ovms.stream_chat(USER, model=MODEL, base_url=emulator.url))
    tools = ask(emulator, tools=[WEATHER])

    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert chunks[-1]["done"] and chunks[-1]["usage"] == whole["usage"]
    assert tools["finish_reason"] == "tool_calls" and tools["tool_calls"][0]["name"] == "get_weather"


def test_embeddings(emulator) -> None:
    result = ovms.embed(["alpha", "beta", "alpha"], model="bge-small", base_url=emulator.url)

    assert result["embeddings"][0] == result["embeddings"][2] != result["embeddings"][1]
    assert emulator.requests[-1].path == "/v3/embeddings"


def test_kserve_infer_echoes_numbers_and_embeds_text(emulator) -> None:
    result = ovms.infer(
        "identity",
        [
            {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.5, 2.5]},
            {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hello"]},
        ],
        base_url=emulator.url,
        inference_id="job-1",
    )

    assert result["outputs"]["x"]["data"] == [1.5, 2.5]
    assert result["outputs"]["embeddings"]["shape"] == [1, 384]
    assert (result["model"], result["model_version"], result["id"]) == ("identity", "1", "job-1")


def test_kserve_infer_with_a_version(emulator) -> None:
    result = ovms.infer("m", [{"name": "x", "shape": [1], "datatype": "INT32", "data": [7]}], version="3", base_url=emulator.url)

    assert result["model_version"] == "3"
    assert emulator.requests[-1].path == "/v2/models/m/versions/3/infer"


def test_model_ready(emulator) -> None:
    assert ovms.model_ready("m", base_url=emulator.url) is True


def test_a_bad_tensor_is_an_invalid_request(emulator) -> None:
    with pytest.raises(ProviderError) as caught:
        ovms.infer("m", [{"name": "x"}], base_url=emulator.url)

    assert caught.value.status == 400


# ----------------------------------------------------------------- errors


def test_401(emulator) -> None:
    emulator.add_fault("bad_key", keys=["k1"])

    with pytest.raises(AuthenticationError) as caught:
        ovms.infer("m", [{"name": "x", "shape": [1], "datatype": "INT32", "data": [7]}], base_url=emulator.url, api_key="k1")

    assert caught.value.provider == "ovms"


def test_404(emulator) -> None:
    with pytest.raises(NotFoundError):
        ovms.chat(USER, model=MODEL, base_url=emulator.url + "/nowhere")


@pytest.mark.parametrize(("forced", "hint"), [(None, None), (True, 1.0)])
def test_429_is_a_rate_limit_with_a_gateways_retry_after_only(emulator, fake_clock, forced, hint) -> None:
    # OVMS itself sends no Retry-After (@backoff then waits its own delays); a gateway's in front is read.
    emulator.add_fault("rate_limit", rps=1, burst=1, retry_after=forced, provider="openvino")
    ask(emulator)

    with pytest.raises(RateLimitError) as caught:
        ask(emulator)

    assert caught.value.retry_after == (None if hint is None else pytest.approx(hint, abs=0.01))


def test_500(emulator) -> None:
    emulator.add_fault("outage", status=500, provider="openvino")

    with pytest.raises(ServerError):
        ovms.infer("m", [{"name": "x", "shape": [1], "datatype": "INT32", "data": [7]}], base_url=emulator.url)


@pytest.mark.parametrize("call", ["chat", "infer"])
def test_malformed_body(emulator, call: str) -> None:
    emulator.add_fault("malformed", mode="wrong_shape")

    with pytest.raises(ProviderError, match="malformed response"):
        if call == "chat":
            ask(emulator)
        else:
            ovms.infer("m", [{"name": "x", "shape": [1], "datatype": "INT32", "data": [7]}], base_url=emulator.url)


def test_truncated_stream(emulator) -> None:
    emulator.add_fault("truncate_stream", after=2)

    with pytest.raises(ProviderConnectionError):
        list(ovms.stream_chat(USER, model=MODEL, base_url=emulator.url))
