"""The official anthropic client is the judge of the emulator's Messages API."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from resilient.testing.emulator.content import answer, count_tokens

TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


KEY = "sk-ant-" + "test-0123456789abcdef"


@pytest.fixture
def client(emulator):
    with anthropic.Anthropic(base_url=emulator.url, api_key=KEY, max_retries=0) as c:
        yield c


def ask(client, text="Name three primes", **kwargs):
    return client.messages.create(
        model="claude-test", max_tokens=256, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_message_answer_and_usage(client):
    reply = ask(client, system="Be brief.")
    expected, _ = answer("Name three primes")
    assert reply.content[0].text == expected
    assert reply.stop_reason == "end_turn"
    assert reply.usage.output_tokens == count_tokens(expected)
    assert reply.usage.input_tokens == count_tokens("Be brief.\nName three primes")


def test_request_id_header(client):
    raw = client.messages.with_raw_response.create(
        model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["request-id"].startswith("req_")


def test_stream_sends_every_event_in_order(emulator):
    # The SDK hides ping events, so the order is checked on the wire.
    body = {"model": "claude-test", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": KEY}
    raw = httpx.post(emulator.url + "/v1/messages", json=body, headers=headers).text
    kinds = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event: ")]
    assert kinds == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 4 + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_sdk_stream_assembles_the_answer(client):
    with client.messages.stream(
        model="claude-test", max_tokens=256, messages=[{"role": "user", "content": "Name three primes"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == answer("Name three primes")[0]
    assert final.usage.output_tokens == count_tokens(final.content[0].text)


def test_tool_use_block_streamed_as_input_json_delta(client):
    with client.messages.stream(
        model="claude-test", max_tokens=256, tools=[TOOL], messages=[{"role": "user", "content": "Paris?"}]
    ) as stream:
        final = stream.get_final_message()
    tool_use = final.content[-1]
    assert final.stop_reason == "tool_use"
    assert (tool_use.type, tool_use.name, tool_use.input) == ("tool_use", "get_weather", {"city": "Paris?"})


def test_tool_result_gets_a_text_answer(client):
    first = ask(client, "Paris?", tools=[TOOL])
    tool_use = first.content[-1]
    second = client.messages.create(
        model="claude-test",
        max_tokens=256,
        tools=[TOOL],
        messages=[
            {"role": "user", "content": "Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}]},
        ],
    )
    assert second.stop_reason == "end_turn"


def tool_use_turn(*ids):
    return {"role": "assistant", "content": [{"type": "tool_use", "id": i, "name": "get_weather", "input": {}} for i in ids]}


def tool_results(*ids):
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "sunny"} for i in ids]}


def unexpected_result(where, ident):
    return (
        f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {ident}. Each `tool_result` block must"
        " have a corresponding `tool_use` block in the previous message."
    )


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        pytest.param(
            [tool_results("toolu_1"), {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "And?"}],
            unexpected_result("messages.0.content.0", "toolu_1"),
            id="a history cut after the call",
        ),
        pytest.param(
            [{"role": "user", "content": "Paris?"}, tool_results("toolu_1")],
            unexpected_result("messages.1.content.0", "toolu_1"),
            id="no tool_use before it",
        ),
        pytest.param(
            [{"role": "user", "content": "Paris?"}, tool_use_turn("toolu_1"), tool_results("toolu_1", "toolu_9")],
            unexpected_result("messages.2.content.1", "toolu_9"),
            id="answers another id",
        ),
        pytest.param(
            [{"role": "user", "content": "Paris and Rome?"}, tool_use_turn("toolu_1", "toolu_2"), tool_results("toolu_2")],
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each"
            " `tool_use` block must have a corresponding `tool_result` block in the next message.",
            id="a tool_use left unanswered by the next message",
        ),
    ],
)
def test_tool_turns_that_do_not_pair_up_are_refused(client, messages, message):
    """A history that lost a turn, or mixed up ids, gets the API's 400 naming the block."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-test", max_tokens=64, tools=[TOOL], messages=messages)
    assert caught.value.body["error"] == {"type": "invalid_request_error", "message": message}


def test_rate_limit_raises_the_clients_own_error(client, emulator, fake_clock):
    emulator.add_fault("rate_limit", rps=2, burst=1)
    ask(client)
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(client)
    headers = caught.value.response.headers
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert headers["retry-after"] == "0.5"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"].endswith("Z")


def test_overloaded_529(client, emulator):
    emulator.add_fault("outage", status=529)
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(client)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_error_event_mid_stream(client, emulator):
    emulator.add_fault("truncate_stream", after=4, error=True)
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(
            model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            list(stream)


def test_missing_version_header_is_invalid_request(emulator):
    body = {"model": "m", "max_tokens": 5, "messages": []}
    reply = httpx.post(emulator.url + "/v1/messages", json=body, headers={"x-api-key": KEY})
    assert reply.status_code == 400
    assert reply.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "anthropic-version: header is required"},
        "request_id": reply.headers["request-id"],
    }


def test_count_tokens(client):
    counted = client.messages.count_tokens(model="claude-test", messages=[{"role": "user", "content": "a b c"}])
    assert counted.input_tokens == 3


def test_a_request_without_a_key_gets_401_authentication_error(emulator):
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(emulator.url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert reply.status_code == 401
    assert reply.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
        "request_id": reply.headers["request-id"],
    }


def test_a_refused_key_is_invalid_x_api_key(client, emulator):
    emulator.add_fault("bad_key", keys=[KEY])
    with pytest.raises(anthropic.AuthenticationError) as caught:
        ask(client)
    assert caught.value.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}


def test_an_error_body_carries_the_request_id_of_its_header(client, emulator):
    emulator.add_fault("outage", status=529)
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(client)
    assert caught.value.body["request_id"] == caught.value.request_id == caught.value.response.headers["request-id"]
    assert caught.value.request_id.startswith("req_")


def test_models_list_is_anthropics_and_pages_by_after_id(client, emulator):
    """GET /v1/models is also OpenAI's path: Anthropic's SDK must get Anthropic's page, not OpenAI's list."""
    first = client.models.list(limit=2)
    assert [m.type for m in first.data] == ["model", "model"] and first.has_more
    assert (first.first_id, first.last_id) == (first.data[0].id, first.data[1].id)
    assert first.data[0].display_name and first.data[0].created_at.year >= 2024
    everything = [m.id for m in client.models.list(limit=2)]  # the SDK follows has_more / last_id
    assert len(everything) == len(set(everything)) == 5 and everything[:2] == [m.id for m in first.data]
    assert {r.provider for r in emulator.requests} == {"anthropic"}


def test_models_retrieve_takes_an_alias_and_404s_an_unknown_model(client):
    assert client.models.retrieve("claude-sonnet-4-5").id == "claude-sonnet-4-5-20250929"
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.models.retrieve("claude-typo")
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_an_unknown_path_with_anthropic_headers_is_anthropics_404(emulator):
    reply = httpx.post(emulator.url + "/v1/messages/batches", json={}, headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert reply.status_code == 404 and reply.json()["error"]["type"] == "not_found_error"
    assert emulator.requests[-1].provider == "anthropic"
