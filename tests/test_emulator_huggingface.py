"""huggingface_hub's InferenceClient is the judge of the emulator's TGI and TEI APIs."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import OverloadedError, TextGenerationError

from resilient.testing.emulator.content import answer, count_tokens


@pytest.fixture
def tgi(emulator):
    return InferenceClient(model=emulator.url, token="hf_test0123456789abcdef")


def test_text_generation_with_details(tgi):
    out = tgi.text_generation("Explain gravity", max_new_tokens=50, details=True)
    assert out.generated_text == answer("Explain gravity")[0]
    assert out.details.generated_tokens == count_tokens(out.generated_text)
    assert out.details.finish_reason == "eos_token"


def test_text_generation_stream_tokens_add_up(tgi):
    tokens = list(tgi.text_generation("Explain gravity", max_new_tokens=3, stream=True))
    assert "".join(tokens) == answer("Explain gravity", 3)[0]
    last = list(tgi.text_generation("Explain gravity", max_new_tokens=3, stream=True, details=True))[-1]
    assert last.details.finish_reason == "length" and last.generated_text == "".join(tokens).lstrip()


def test_chat_completion_through_the_openai_compatible_route(emulator):
    client = InferenceClient(base_url=emulator.url, token="hf_test0123456789abcdef")
    reply = client.chat_completion([{"role": "user", "content": "hello"}], model="tgi", max_tokens=20)
    assert reply.choices[0].message.content == answer("hello")[0]
    streamed = client.chat_completion([{"role": "user", "content": "hello"}], model="tgi", stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == answer("hello")[0]


def test_chat_completion_tool_call(emulator):
    tool = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
    }
    emulator.keyless.add("openai")  # TGI's Messages API takes no key on OpenAI's routes
    client = InferenceClient(base_url=emulator.url)
    reply = client.chat_completion([{"role": "user", "content": "find it"}], model="tgi", tools=[tool])
    assert reply.choices[0].message.tool_calls[0].function.name == "lookup"


def test_feature_extraction_against_tei(emulator):
    vectors = InferenceClient(model=emulator.url + "/embed").feature_extraction(["one", "two"])
    assert vectors.shape == (2, 384)


def test_rerank_orders_by_score(emulator):
    ranked = httpx.post(emulator.url + "/rerank", json={"query": "q", "texts": ["a", "b", "c"], "return_text": True}).json()
    assert sorted(r["index"] for r in ranked) == [0, 1, 2]
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)


def test_429_is_tgis_overloaded_error(tgi, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=1, burst=1)
    tgi.text_generation("x")
    with pytest.raises(OverloadedError):
        tgi.text_generation("x")


def test_error_event_mid_stream(tgi, emulator):
    emulator.add_fault("truncate_stream", after=1, error=True)
    with pytest.raises(TextGenerationError):
        list(tgi.text_generation("Explain gravity", stream=True))


def test_validation_error_body(emulator):
    reply = httpx.post(emulator.url + "/generate", json={"inputs": ""})
    assert reply.status_code == 400 and reply.json()["error_type"] == "validation"
