"""The official openai client is the judge of the emulator's OpenAI dialect."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from resilient.testing.emulator.content import answer, count_tokens

KEY = "sk-" + "test-0123456789abcdef"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture
def client(emulator):
    with openai.OpenAI(base_url=emulator.url + "/v1", api_key=KEY, max_retries=0) as c:
        yield c


def ask(client, text="What is the capital of France?", **kwargs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], **kwargs)


def test_chat_answer_is_deterministic_and_usage_consistent(client):
    reply = ask(client)
    expected, _ = answer("What is the capital of France?")
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == count_tokens(expected)
    assert reply.usage.prompt_tokens == count_tokens("What is the capital of France?")
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client):
    reply = ask(client, max_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 3


def test_stream_chunks_add_up_to_the_answer_with_usage_last(client):
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ask(client).choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == count_tokens(text)


def test_tool_call_then_answer(client):
    first = ask(client, "Weather in Paris", tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Weather in Paris", "days": 1}
    second = client.chat.completions.create(
        model="gpt-4o-mini",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


TOOL_TURN_REFUSED = "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."


def tool_call_turn(*ids):
    calls = [{"id": i, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}} for i in ids]
    return {"role": "assistant", "content": None, "tool_calls": calls}


@pytest.mark.parametrize(
    ("messages", "message", "param"),
    [
        pytest.param(
            [{"role": "user", "content": "Weather?"}, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
            TOOL_TURN_REFUSED,
            "messages.[1].role",
            id="no assistant turn with tool_calls",
        ),
        pytest.param(
            [
                {"role": "user", "content": "Weather?"},
                tool_call_turn("call_1"),
                {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
            ],
            TOOL_TURN_REFUSED,
            "messages.[2].role",
            id="answers another call id",
        ),
        pytest.param(
            [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                tool_call_turn("call_1", "call_2"),
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "user", "content": "And?"},
            ],
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each"
            " 'tool_call_id'. The following tool_call_ids did not have response messages: call_2",
            "messages.[3].role",
            id="a call left unanswered",
        ),
    ],
)
def test_tool_turns_that_do_not_pair_up_are_refused(client, messages, message, param):
    """An agent loop that drops a turn, or mixes up call ids, gets the API's 400, typo included."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], messages=messages)
    assert caught.value.body == {"message": message, "type": "invalid_request_error", "param": param, "code": None}


def test_parallel_tool_calls_answered_in_any_order_are_accepted(client):
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        tool_call_turn("call_1", "call_2"),
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    reply = client.chat.completions.create(model="gpt-4o-mini", tools=[WEATHER_TOOL], messages=messages)
    assert reply.choices[0].finish_reason == "stop"


def test_an_unknown_role_is_refused_naming_the_allowed_ones(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "system", "content": "Be brief."}, {"role": "model", "content": "hi"}]
        )
    assert caught.value.body == {
        "message": "Invalid value: 'model'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool',"
        " and 'developer'.",
        "type": "invalid_request_error",
        "param": "messages[1].role",
        "code": "invalid_value",
    }


def test_streamed_tool_call_arguments_are_valid_json(client):
    chunks = list(ask(client, "Weather in Paris", tools=[WEATHER_TOOL], stream=True))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"city": "Weather in Paris", "days": 1}


def test_embeddings_are_deterministic_unit_vectors_of_the_requested_size(client):
    # The client asks for base64 by default and decodes it; both encodings must agree.
    one = client.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"], dimensions=64)
    again = client.embeddings.create(model="text-embedding-3-small", input="a cat", dimensions=64, encoding_format="float")
    assert [len(d.embedding) for d in one.data] == [64, 64]
    assert one.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    assert sum(x * x for x in one.data[1].embedding) == pytest.approx(1.0, abs=1e-5)
    assert one.usage.prompt_tokens == 4


def test_images_and_models(client):
    image = client.images.generate(model="dall-e-3", prompt="a red fox", n=2)
    assert len(image.data) == 2 and image.data[0].url.endswith(".png")
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]
    assert client.models.retrieve("my-model").id == "my-model"


def test_rate_limit_raises_the_clients_own_error_with_headers(client, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=1, burst=1)
    ask(client)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    headers = caught.value.response.headers
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert headers["retry-after-ms"] == "1000" and headers["retry-after"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0"


def test_invalid_body_gets_openais_400_body(emulator):
    reply = httpx.post(emulator.url + "/v1/chat/completions", content=b"{not json", headers={"authorization": "Bearer " + KEY})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_missing_messages_is_a_bad_request_error(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])


def test_truncated_stream_breaks_the_clients_read(client, emulator):
    emulator.add_fault("truncate_stream", after=2)
    with pytest.raises((httpx.RemoteProtocolError, openai.APIError)):
        list(ask(client, stream=True))


def test_stream_error_event_raises_api_error(client, emulator):
    emulator.add_fault("truncate_stream", after=2, error=True)
    with pytest.raises(openai.APIError):
        list(ask(client, stream=True))


@pytest.mark.parametrize("headers", [{}, {"x-api-key": KEY}], ids=["no key", "key in another header"])
def test_a_request_without_a_bearer_key_gets_openais_401(emulator, headers):
    reply = httpx.post(emulator.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []}, headers=headers)
    assert reply.status_code == 401
    error = reply.json()["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)
    assert emulator.requests[-1].faults == ()


def test_a_refused_key_is_invalid_api_key(client, emulator):
    emulator.add_fault("bad_key", keys=[KEY])
    with pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert caught.value.code == "invalid_api_key"
    assert caught.value.body["message"] == (
        "Incorrect API key provided: sk-…cdef. You can find your API key at https://platform.openai.com/account/api-keys."
    )


def test_keyless_makes_openais_routes_a_local_servers(emulator):
    """vLLM, llama.cpp and TGI speak OpenAI's /v1 without a key; ``keyless`` lets the emulator play one of them."""
    emulator.keyless.add("openai")
    reply = httpx.post(emulator.url + "/v1/chat/completions", json={"model": "tgi", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == answer("hi")[0]


def test_embeddings_take_token_arrays(client):
    """tiktoken-based clients (langchain-openai by default) send token ids: one array, or one per input."""
    many = client.embeddings.create(model="text-embedding-3-small", input=[[9906, 1917], [15339]])
    one = client.embeddings.create(model="text-embedding-3-small", input=[9906, 1917])
    assert [d.index for d in many.data] == [0, 1]
    assert one.data[0].embedding == many.data[0].embedding != many.data[1].embedding


def test_an_unknown_path_under_v1_is_openais_404(client, emulator):
    with pytest.raises(openai.NotFoundError) as caught:
        client.post("/responses", body={"model": "gpt-4o-mini", "input": "hi"}, cast_to=object)
    assert caught.value.body["type"] == "invalid_request_error" and caught.value.code is None
    assert caught.value.body["message"].startswith("Invalid URL (POST /v1/responses)")
    assert emulator.requests[-1].provider == "openai"
