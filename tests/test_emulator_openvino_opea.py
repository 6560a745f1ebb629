"""OpenVINO Model Server (OpenAI-compatible /v3 and KServe v2) and OPEA ChatQnA."""

from __future__ import annotations

import ast

import httpx
import openai
import pytest

from resilient.testing.emulator.content import answer, embedding


@pytest.fixture
def http():
    with httpx.Client() as client:
        yield client


def test_ovms_v3_chat_with_the_openai_client(emulator):
    with openai.OpenAI(base_url=emulator.url + "/v3", api_key="unused", max_retries=0) as client:
        reply = client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "hi"}])
        vectors = client.embeddings.create(model="bge", input="hi", dimensions=8)
    assert reply.choices[0].message.content == answer("hi")[0]
    assert len(vectors.data[0].embedding) == 8
    assert {r.provider for r in emulator.requests} == {"openvino"}


def test_ovms_sends_no_rate_limit_headers_even_under_a_rate_limit(emulator, http, fake_clock):
    """The /v3 routes are OpenAI's handlers, but OVMS has no x-ratelimit-* headers to inherit."""
    emulator.add_fault("rate_limit", rps=1, burst=1, provider="openvino")
    body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}]}
    passed = http.post(emulator.url + "/v3/chat/completions", json=body)
    refused = http.post(emulator.url + "/v3/chat/completions", json=body)
    assert (passed.status_code, refused.status_code) == (200, 429)
    assert [h for r in (passed, refused) for h in r.headers if h.startswith("x-ratelimit")] == []


def test_kserve_infer_text_gives_embeddings_and_numbers_are_echoed(emulator, http):
    body = {
        "id": "42",
        "inputs": [
            {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
            {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]},
        ],
    }
    reply = http.post(emulator.url + "/v2/models/bge/infer", json=body).json()
    text, numbers = reply["outputs"]
    assert (reply["model_name"], reply["id"]) == ("bge", "42")
    assert text["shape"] == [2, 384] and text["data"][:384] == pytest.approx(embedding("a", 384))
    assert numbers == body["inputs"][1]


def test_kserve_metadata_ready_and_bad_tensor(emulator, http):
    assert http.get(emulator.url + "/v2/models/bge").json()["name"] == "bge"
    assert http.get(emulator.url + "/v2/models/bge/ready").status_code == 200
    bad = http.post(emulator.url + "/v2/models/bge/infer", json={"inputs": [{"name": "x"}]})
    assert bad.status_code == 400 and "error" in bad.json()


def test_opea_chatqna_stream_and_plain(emulator, http):
    streamed = http.post(emulator.url + "/v1/chatqna", json={"messages": "What is OPEA?"}).text
    lines = [line.removeprefix("data: ") for line in streamed.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    assert "".join(ast.literal_eval(line).decode() for line in lines[:-1]) == answer("What is OPEA?")[0]
    plain = http.post(emulator.url + "/v1/chatqna", json={"messages": "What is OPEA?", "stream": False}).json()
    assert plain["choices"][0]["message"]["content"] == answer("What is OPEA?")[0]


def test_opea_error_is_fastapi_detail(emulator, http):
    reply = http.post(emulator.url + "/v1/chatqna", json={"messages": []})
    assert reply.status_code == 400 and "detail" in reply.json()
